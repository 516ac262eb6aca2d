"""A plain folder as a bucket: the embedded default (`file:///abs/path`, or a bare absolute path).

Keys are always valid Unicode text, whatever bytes the file names hold on disk. A name that
is not UTF-8 (CP949/EUC-KR from Korean Windows tools and zip archives) is listed decoded, e.g.
`incoming/상담.txt`, and every operation on that key finds the real file again by trying the
UTF-8 spelling first, then the CP949 one (stateless, so a run in another process opens the
same file). A name that decodes as neither is listed as `\\xNN` escapes with a `name_problem`,
so the sensor can reject it with a reason instead of failing.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from cscoach_pipeline.defs.ingest.storage.base import (
    DISK_ERRNOS,
    Backend,
    NoOptions,
    ObjectNotFound,
    ObjectStore,
    StorageDiskError,
    StorageError,
    StoredObject,
    change_token,
)

_CHUNK = 1024 * 1024
UNDECODABLE_NAME = "the file name is not valid UTF-8 or CP949/EUC-KR: rename the file"
_ESCAPE = re.compile(r"\\x([0-9a-f]{2})")


def _text_name(name: str, parent: str) -> tuple[str, str | None]:
    """The key spelling of one on-disk name (a str with surrogate escapes for undecodable
    bytes, as os.walk gives it) and why it cannot be a consultation, if it cannot."""
    try:
        name.encode("utf-8")
        return name, None
    except UnicodeEncodeError:
        pass
    raw = os.fsencode(name)
    escaped = raw.decode("utf-8", "backslashreplace")
    try:
        text = raw.decode("cp949")  # a superset of EUC-KR
    except UnicodeDecodeError:
        return escaped, UNDECODABLE_NAME
    if os.path.lexists(os.path.join(parent, text)):
        # The decoded spelling belongs to the UTF-8 file beside it; this one keeps its escapes.
        return escaped, (
            f"another file in the same folder is named {text!r} in UTF-8; this one has the "
            "same name in CP949/EUC-KR: rename one of them"
        )
    return text, None


def _disk_spellings(name: str) -> list[str]:
    """Where a key component may be on disk, most likely first: UTF-8, CP949, `\\xNN` bytes."""
    spellings = [name]
    with contextlib.suppress(UnicodeError):
        spellings.append(os.fsdecode(name.encode("cp949")))
    if "\\x" in name:
        # Undo `bytes.decode("utf-8", "backslashreplace")`: text as UTF-8, escapes as bytes.
        pieces = _ESCAPE.split(name)
        raw = b"".join(
            bytes([int(piece, 16)]) if index % 2 else piece.encode("utf-8", "surrogatepass")
            for index, piece in enumerate(pieces)
        )
        spellings.append(os.fsdecode(raw))
    return spellings


def _plain(key: str) -> bool:
    """ASCII without `\\xNN` escapes: spelled the same on disk, no lookup needed."""
    return key.isascii() and "\\x" not in key


def _missing(exc: OSError) -> bool:
    # A name too long for the filesystem cannot exist there (a sidecar of a 250-byte name).
    return isinstance(exc, FileNotFoundError) or exc.errno == errno.ENAMETOOLONG


class LocalFolderStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _on_disk(self, key: str) -> str:
        """The on-disk spelling of a key (relative to the root)."""
        if _plain(key) or os.path.lexists(self.root / key):
            return key
        parts: list[str] = []
        for part in key.split("/"):
            if not _plain(part):
                parent = self.root.joinpath(*parts)
                part = next((s for s in _disk_spellings(part) if os.path.lexists(parent / s)), part)
            parts.append(part)
        return "/".join(parts)

    def _key_of(self, path: Path) -> tuple[str, str | None]:
        """The key of a resolved on-disk path under the root, and its name problem if any."""
        parts: list[str] = []
        problem: str | None = None
        parent = self.root
        for name in path.relative_to(self.root).parts:
            text, issue = _text_name(name, str(parent))
            parts.append(text)
            problem = problem or issue
            parent = parent / name
        return "/".join(parts), problem

    def _path(self, key: str) -> Path:
        path = (self.root / self._on_disk(key)).resolve()
        # Keys come from listings and partition tags; never let one escape the bucket.
        if self.root != path and self.root not in path.parents:
            raise StorageError(f"key {key!r} points outside the bucket")
        return path

    @staticmethod
    def _stored(key: str, stat: os.stat_result, problem: str | None = None) -> StoredObject:
        return StoredObject(
            key=key,
            size=stat.st_size,
            modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            version_token=change_token(stat.st_size, None, str(stat.st_mtime_ns)),
            name_problem=problem,
        )

    def list_objects(self, prefix: str, start_after: str | None = None) -> Iterator[StoredObject]:
        start = self._path(prefix)
        if not start.is_dir():
            return
        # Collect keys first: the interface promises one global key order (as S3), which a
        # directory walk does not give ("a-b" sorts before "a/b"). Plain strings keep a
        # 100k-object listing small; only names that are not UTF-8 keep their disk spelling.
        root_len = len(str(self.root)) + 1
        disk_of: dict[str, tuple[str, str | None]] = {}
        keys: list[str] = []
        for directory, _, filenames in os.walk(start):
            relative = directory[root_len:] if len(directory) >= root_len else ""
            for name in filenames:
                on_disk = f"{relative}/{name}" if relative else name
                try:
                    on_disk.encode("utf-8")
                    keys.append(on_disk)
                except UnicodeEncodeError:
                    key, problem = self._key_of(self.root / on_disk)
                    disk_of[key] = (on_disk, problem)
                    keys.append(key)
        keys.sort()
        for key in keys:
            if start_after is not None and key <= start_after:
                continue
            on_disk, problem = disk_of.get(key, (key, None))
            try:
                stat = (self.root / on_disk).stat()
            except OSError as exc:
                if _missing(exc):  # removed between listing and stat
                    continue
                raise
            yield self._stored(key, stat, problem)

    def stat(self, key: str) -> StoredObject:
        path = self._path(key)
        try:
            stat = path.stat()
        except OSError as exc:
            if _missing(exc):
                raise ObjectNotFound(f"object {key!r} no longer exists in the bucket") from exc
            raise
        stored_key, problem = self._key_of(path)
        return self._stored(stored_key, stat, problem)

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            if _missing(exc):
                raise ObjectNotFound(f"object {key!r} no longer exists in the bucket") from exc
            raise

    def download_to(self, key: str, destination: Path) -> None:
        try:
            shutil.copyfile(self._path(key), destination)
        except OSError as exc:
            if _missing(exc):
                raise ObjectNotFound(f"object {key!r} no longer exists in the bucket") from exc
            raise

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._write(key, lambda fd: _write_all(fd, data))

    def upload_file(self, source: Path, key: str, content_type: str | None = None) -> None:
        def copy(fd: int) -> None:
            with source.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    _write_all(fd, chunk)

        self._write(key, copy)

    def _write(self, key: str, fill: Callable[[int], None]) -> None:
        """Write-then-rename, so readers never see half an artifact; a failed write (a full
        disk, anything) removes its temporary file, and disk faults become StorageDiskError."""
        path = self._path(key)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                fill(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            if exc.errno in DISK_ERRNOS:
                raise StorageDiskError(
                    f"writing {key!r} failed: {DISK_ERRNOS[exc.errno]} ({exc.strerror})"
                ) from exc
            raise
        finally:
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def locate(self, key: str) -> str:
        return str(self._path(key))

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        try:
            with self._path(key).open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        except OSError as exc:
            if _missing(exc):
                raise ObjectNotFound(f"object {key!r} no longer exists in the bucket") from exc
            raise
        return digest.hexdigest()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def open_folder(url: str, options: NoOptions) -> LocalFolderStore:
    """The folder a `file:///abs/path` URL (or a bare absolute path) names."""
    parsed = urlparse(url)
    path = Path(unquote(parsed.path if parsed.scheme else url))
    # file://data/bucket parses "data" as a host and would silently mean /bucket.
    relative_host = parsed.scheme == "file" and parsed.netloc not in ("", "localhost")
    if relative_host or not path.is_absolute():
        raise ValueError(f"CSCOACH_BUCKET_URL must be an absolute file:/// URL, got {url!r}")
    return LocalFolderStore(path)


BACKEND = Backend(usage="file:///path", options=NoOptions, open=open_folder)
