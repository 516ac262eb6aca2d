"""Storage backends behind one interface, chosen by `CSCOACH_BUCKET_URL`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from .base import ObjectNotFound, ObjectStore, StorageError, StoredObject
from .local import LocalFolderStore

__all__ = [
    "LocalFolderStore",
    "ObjectNotFound",
    "ObjectStore",
    "StorageError",
    "StoredObject",
    "open_object_store",
]


def open_object_store(url: str) -> ObjectStore:
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = Path(unquote(parsed.path if parsed.scheme else url))
        # file://data/bucket parses "data" as a host and would silently mean /bucket.
        relative_host = parsed.scheme == "file" and parsed.netloc not in ("", "localhost")
        if relative_host or not path.is_absolute():
            raise ValueError(f"CSCOACH_BUCKET_URL must be an absolute file:/// URL, got {url!r}")
        return LocalFolderStore(path)
    if parsed.scheme in ("s3", "supabase"):
        raise ValueError(
            f"bucket scheme {parsed.scheme!r} is not available in this build yet; "
            "use file:///abs/path"
        )
    raise ValueError(
        f"unsupported CSCOACH_BUCKET_URL scheme {parsed.scheme!r}: "
        "use file:///path, s3://bucket/prefix or supabase://bucket/prefix"
    )
