"""The storage backends by URL scheme. Adding a backend is one module that defines its
`Backend` (options model and factory), one line in `BACKENDS` and one options field on
`BucketResource`."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from dagster import Config

from cscoach_pipeline.defs.ingest.storage import local, s3, supabase
from cscoach_pipeline.defs.ingest.storage.base import Backend, ObjectStore

# Insertion order is the order the unknown-scheme error lists them in.
BACKENDS: dict[str, Backend[Any]] = {
    "file": local.BACKEND,
    "s3": s3.BACKEND,
    "supabase": supabase.BACKEND,
}


def backend_for(url: str) -> Backend[Any]:
    """The backend of the URL's scheme; ValueError listing the known ones if there is none."""
    # A bare absolute path is a folder, as a file:/// URL is.
    scheme = urlparse(url).scheme or "file"
    backend = BACKENDS.get(scheme)
    if backend is None:
        usages = [known.usage for known in BACKENDS.values()]
        listed = ", ".join(usages[:-1]) + " or " + usages[-1] if len(usages) > 1 else usages[0]
        raise ValueError(f"unsupported CSCOACH_BUCKET_URL scheme {scheme!r}: use {listed}")
    return backend


def open_object_store(url: str, *options: Config) -> ObjectStore:
    """The store the URL names, built by its scheme's backend with the one of `options` of
    that backend's options type (its defaults when none is given; the others are ignored).
    Stores are cached per process and per (URL, options): clients keep connection pools."""
    backend = backend_for(url)
    chosen = next((o for o in options if isinstance(o, backend.options)), None)
    return _open_cached(url, chosen if chosen is not None else backend.options())


@lru_cache(maxsize=16)
def _open_cached(url: str, options: Config) -> ObjectStore:
    return backend_for(url).open(url, options)
