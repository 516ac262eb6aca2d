"""A plain folder as a bucket: the embedded default (`file:///abs/path`)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .base import ObjectNotFound, ObjectStore, StorageError, StoredObject, change_token

_CHUNK = 1024 * 1024


class LocalFolderStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        # Keys come from listings and partition tags; never let one escape the bucket.
        if self.root != path and self.root not in path.parents:
            raise StorageError(f"key {key!r} points outside the bucket")
        return path

    @staticmethod
    def _stored(key: str, stat: os.stat_result) -> StoredObject:
        return StoredObject(
            key=key,
            size=stat.st_size,
            modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            version_token=change_token(stat.st_size, None, str(stat.st_mtime_ns)),
        )

    def list_objects(self, prefix: str, start_after: str | None = None) -> Iterator[StoredObject]:
        start = self._path(prefix)
        if not start.is_dir():
            return
        # Collect keys first: the interface promises one global key order (as S3), which a
        # directory walk does not give ("a-b" sorts before "a/b"). Plain strings keep a
        # 100k-object listing small.
        root_len = len(str(self.root)) + 1
        keys = sorted(
            f"{directory[root_len:]}/{name}" if len(directory) >= root_len else name
            for directory, _, filenames in os.walk(start)
            for name in filenames
        )
        for key in keys:
            if start_after is not None and key <= start_after:
                continue
            path = self.root / key
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed between listing and stat
                continue
            yield self._stored(key, stat)

    def stat(self, key: str) -> StoredObject:
        path = self._path(key)
        try:
            return self._stored(path.relative_to(self.root).as_posix(), path.stat())
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object {key!r} no longer exists in the bucket") from exc

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object {key!r} no longer exists in the bucket") from exc

    def download_to(self, key: str, destination: Path) -> None:
        try:
            shutil.copyfile(self._path(key), destination)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object {key!r} no longer exists in the bucket") from exc

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so readers never see half an artifact.
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)

    def upload_file(self, source: Path, key: str, content_type: str | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
            tmp_path = Path(tmp.name)
        shutil.copyfile(source, tmp_path)
        os.replace(tmp_path, path)

    def locate(self, key: str) -> str:
        return str(self._path(key))

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        try:
            with self._path(key).open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"object {key!r} no longer exists in the bucket") from exc
        return digest.hexdigest()
