"""Storage backends behind one interface, chosen by `CSCOACH_BUCKET_URL`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from cscoach_pipeline.defs.ingest.storage.base import (
    ObjectNotFound,
    ObjectStore,
    StorageError,
    StoredObject,
)
from cscoach_pipeline.defs.ingest.storage.local import LocalFolderStore

__all__ = [
    "LocalFolderStore",
    "ObjectNotFound",
    "ObjectStore",
    "StorageError",
    "StoredObject",
    "open_object_store",
]


def open_object_store(
    url: str, *, supabase_url: str | None = None, supabase_key: str | None = None
) -> ObjectStore:
    """The backend named by the URL. Stores are cached per process: clients keep pools."""
    return _open_cached(url, supabase_url, supabase_key)


@lru_cache(maxsize=16)
def _open_cached(url: str, supabase_url: str | None, supabase_key: str | None) -> ObjectStore:
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = Path(unquote(parsed.path if parsed.scheme else url))
        # file://data/bucket parses "data" as a host and would silently mean /bucket.
        relative_host = parsed.scheme == "file" and parsed.netloc not in ("", "localhost")
        if relative_host or not path.is_absolute():
            raise ValueError(f"CSCOACH_BUCKET_URL must be an absolute file:/// URL, got {url!r}")
        return LocalFolderStore(path)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(
                f"CSCOACH_BUCKET_URL needs a bucket name: s3://bucket/prefix, got {url!r}"
            )
        from cscoach_pipeline.defs.ingest.storage.s3 import S3ObjectStore

        return S3ObjectStore(parsed.netloc, unquote(parsed.path))
    if parsed.scheme == "supabase":
        if not parsed.netloc:
            raise ValueError(
                f"CSCOACH_BUCKET_URL needs a bucket name: supabase://bucket/prefix, got {url!r}"
            )
        if not supabase_url or not supabase_key:
            raise ValueError(
                "a supabase:// bucket needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"
            )
        from cscoach_pipeline.defs.ingest.storage.supabase import SupabaseObjectStore

        return SupabaseObjectStore(
            parsed.netloc, unquote(parsed.path), url=supabase_url, key=supabase_key
        )
    raise ValueError(
        f"unsupported CSCOACH_BUCKET_URL scheme {parsed.scheme!r}: "
        "use file:///path, s3://bucket/prefix or supabase://bucket/prefix"
    )
