"""The one small interface every storage backend implements (local folder, S3, Supabase), and
how a backend plugs into the registry: a `Backend` (its options model and its factory)."""

from __future__ import annotations

import errno
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, Generic, TypeVar
from urllib.parse import unquote, urlparse

from dagster import Config


class StorageError(Exception):
    """The store itself failed (unreachable, denied, missing object), not the file's content."""


class ObjectNotFound(StorageError):
    pass


class StorageDiskError(StorageError):
    """The disk behind the store refused a write (full, over quota, I/O error): an
    infrastructure outage to retry, not a fault of the consultation."""


# Write failures that are the disk's, not the artifact's: retried as an outage.
DISK_ERRNOS = {
    errno.ENOSPC: "no space left on the bucket's disk",
    errno.EDQUOT: "disk quota exceeded on the bucket's disk",
    errno.EIO: "I/O error on the bucket's disk",
}


_NO_METADATA: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    modified: datetime
    # Cheap change token from the listing (size + mtime_ns for folders, ETag for S3 and
    # Supabase); lets a sensor tell "unchanged" without downloading.
    version_token: str
    # User metadata attached to the object (S3 x-amz-meta-*, Supabase metadata); listings may
    # leave it empty, `stat` fills it.
    # A shared empty mapping by default: a 100k-object listing allocates no dict per object.
    metadata: Mapping[str, str] = field(default_factory=lambda: _NO_METADATA)
    etag: str | None = None
    # Why this object cannot be a consultation whatever its content (a folder file name that
    # decodes as no supported encoding); None for every normal object and every S3 key.
    name_problem: str | None = None


def change_token(size: int, etag: str | None, fallback: str) -> str:
    """The listing token the sensor compares: size plus the store's ETag, or plus a
    modification marker (mtime) where the store has no ETag."""
    return f"{size}:{etag or fallback}"


class ObjectStore(ABC):
    """Keys are '/'-separated paths relative to the bucket root, e.g. 'incoming/a/b.wav'."""

    url: str
    # True where an object is listed only once its upload has completed (S3's PUT and
    # multipart uploads, Supabase Storage): nothing listed is still being written.
    listed_objects_are_complete: ClassVar[bool] = False

    @abstractmethod
    def list_objects(self, prefix: str, start_after: str | None = None) -> Iterator[StoredObject]:
        """Objects under `prefix` in ascending key order (UTF-8 byte order, as S3 lists),
        only those whose key sorts after `start_after` when given, so a long listing can
        resume where the previous one stopped."""

    @abstractmethod
    def stat(self, key: str) -> StoredObject: ...

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def download_to(self, key: str, destination: Path) -> None: ...

    @abstractmethod
    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None: ...

    @abstractmethod
    def upload_file(self, source: Path, key: str, content_type: str | None = None) -> None: ...

    @abstractmethod
    def locate(self, key: str) -> str:
        """A human-usable address of the object (path or URL), for metadata and tables."""

    def sha256(self, key: str) -> str:
        # Default reads the object; backends override when they can stream.
        digest = hashlib.sha256()
        digest.update(self.read_bytes(key))
        return digest.hexdigest()

    def fingerprint(self, obj: StoredObject) -> str:
        """A content identity for duplicate detection, as cheap as the backend allows: the
        store's own ETag when it has one (no download), else the sha256 of the content."""
        if obj.etag:
            return f"etag:{obj.etag.strip(chr(34))}:{obj.size}"
        return f"sha256:{self.sha256(obj.key)}"

    def read_optional(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist (sidecar files)."""
        try:
            return self.read_bytes(key)
        except ObjectNotFound:
            return None


# ----------------------------------------------------------------------------- backends


class NoOptions(Config):
    """The options of a backend that needs nothing beyond its URL (a local folder)."""


OptionsT = TypeVar("OptionsT", bound=Config)


@dataclass(frozen=True, slots=True)
class Backend(Generic[OptionsT]):
    """One URL scheme's way to a store; its module builds one and the registry lists it."""

    # The URL form, as the unknown-scheme error lists it: "s3://bucket/prefix".
    usage: str
    # Its options model. BucketResource holds one as a nested field (secrets as EnvVar);
    # the registry hands the factory the instance of this type, or the defaults.
    options: type[OptionsT]
    # (bucket URL, options) -> store. Parses and validates the URL (ValueError).
    open: Callable[[str, OptionsT], ObjectStore]


def bucket_and_prefix(url: str) -> tuple[str, str]:
    """(bucket, root prefix) of a `scheme://bucket/prefix` URL, the prefix percent-decoded."""
    parsed = urlparse(url)
    if not parsed.netloc:
        raise ValueError(
            f"CSCOACH_BUCKET_URL needs a bucket name: {parsed.scheme}://bucket/prefix, got {url!r}"
        )
    return parsed.netloc, unquote(parsed.path)
