"""Storage backends behind one interface, chosen by the scheme of `CSCOACH_BUCKET_URL`
(registry.py lists them)."""

from __future__ import annotations

from cscoach_pipeline.defs.ingest.storage.base import (
    Backend,
    NoOptions,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    StoredObject,
)
from cscoach_pipeline.defs.ingest.storage.local import LocalFolderStore
from cscoach_pipeline.defs.ingest.storage.registry import (
    BACKENDS,
    backend_for,
    open_object_store,
)
from cscoach_pipeline.defs.ingest.storage.registry import _open_cached as _open_cached
from cscoach_pipeline.defs.ingest.storage.s3 import S3Options
from cscoach_pipeline.defs.ingest.storage.supabase import SupabaseOptions

__all__ = [
    "BACKENDS",
    "Backend",
    "LocalFolderStore",
    "NoOptions",
    "ObjectNotFound",
    "ObjectStore",
    "S3Options",
    "StorageError",
    "StoredObject",
    "SupabaseOptions",
    "backend_for",
    "open_object_store",
]
