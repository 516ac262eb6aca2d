"""Proves the local-folder bucket and the bucket URL parser on real files.

`LocalFolderStore` lists recursively in a stable, sorted order with keys relative to the root
in POSIX form; `stat`, `read_bytes`, `download_to` and the streaming `sha256` agree with the
file; `write_bytes`/`upload_file` replace files by rename (a reader holding the old file keeps
the whole old content) and leave no temp files; keys that escape the root ('..', absolute
paths, symlinks) raise `StorageError` and write nothing; a missing object is `ObjectNotFound`.
`open_object_store` accepts file:/// URLs and absolute paths and rejects relative paths
(including file://relative/path), unavailable and unknown schemes with clear messages.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cscoach_pipeline.resources.storage import (
    LocalFolderStore,
    ObjectNotFound,
    StorageError,
    open_object_store,
)

FILES: dict[str, bytes] = {
    "incoming/a.txt": b"Agent: hello\n",
    "incoming/b.wav": b"RIFF....WAVE",
    "incoming/team/d.txt": "Customer: 안녕하세요\n".encode(),
    "incoming/team/x/c.mp3": b"ID3" + bytes(100),
    "outside/other.txt": b"not incoming",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    bucket = tmp_path / "bucket"
    for key, data in FILES.items():
        path = bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return bucket


@pytest.fixture
def store(root: Path) -> LocalFolderStore:
    return LocalFolderStore(root)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".tmp-"))


# ----------------------------------------------------------------------------- listing, stat


def test_list_objects_is_recursive_sorted_and_relative(store: LocalFolderStore) -> None:
    keys = [obj.key for obj in store.list_objects("incoming")]

    assert keys == [
        "incoming/a.txt",
        "incoming/b.wav",
        "incoming/team/d.txt",
        "incoming/team/x/c.mp3",
    ]
    assert keys == sorted(keys)
    assert [obj.key for obj in store.list_objects("incoming/")] == keys
    assert [obj.key for obj in store.list_objects("incoming")] == keys  # stable
    assert {obj.key for obj in store.list_objects("")} == set(FILES)


def test_list_objects_of_a_missing_prefix_is_empty(store: LocalFolderStore) -> None:
    assert list(store.list_objects("nothing-here/")) == []
    assert list(store.list_objects("incoming/a.txt")) == []  # a file is not a folder


def test_listed_objects_carry_size_time_and_version(store: LocalFolderStore, root: Path) -> None:
    listed = {obj.key: obj for obj in store.list_objects("incoming")}
    obj = listed["incoming/team/d.txt"]

    assert obj.size == len(FILES["incoming/team/d.txt"])
    assert obj.modified.tzinfo is not None
    assert abs(obj.modified - datetime.now(tz=UTC)) < timedelta(minutes=5)
    assert store.stat("incoming/team/d.txt") == obj

    path = root / "incoming/team/d.txt"
    path.write_bytes(b"changed content")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    changed = store.stat("incoming/team/d.txt")
    assert changed.version_token != obj.version_token
    assert changed.size == len(b"changed content")


def test_missing_object_raises_object_not_found(store: LocalFolderStore, tmp_path: Path) -> None:
    key = "incoming/gone.wav"
    for call in (
        lambda: store.stat(key),
        lambda: store.read_bytes(key),
        lambda: store.download_to(key, tmp_path / "copy.wav"),
        lambda: store.sha256(key),
    ):
        with pytest.raises(ObjectNotFound, match="no longer exists in the bucket"):
            call()
    assert issubclass(ObjectNotFound, StorageError)


# ----------------------------------------------------------------------- reading, hashing


def test_read_and_download(store: LocalFolderStore, tmp_path: Path) -> None:
    destination = tmp_path / "copy.mp3"

    store.download_to("incoming/team/x/c.mp3", destination)

    assert destination.read_bytes() == FILES["incoming/team/x/c.mp3"]
    assert store.read_bytes("incoming/team/d.txt") == FILES["incoming/team/d.txt"]
    assert store.locate("incoming/a.txt") == str(store.root / "incoming" / "a.txt")
    assert store.url == store.root.as_uri()


def test_sha256_streams_large_files(store: LocalFolderStore, root: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 12_345)  # more than two 1 MiB chunks
    (root / "incoming" / "big.wav").write_bytes(data)

    assert store.sha256("incoming/big.wav") == hashlib.sha256(data).hexdigest()
    assert store.sha256("incoming/a.txt") == hashlib.sha256(FILES["incoming/a.txt"]).hexdigest()


# -------------------------------------------------------------------------------- writing


def test_write_bytes_creates_folders_and_leaves_no_temp_files(
    store: LocalFolderStore, root: Path
) -> None:
    store.write_bytes("artifacts/c1/transcript.json", b'{"segments": []}', "application/json")

    assert (root / "artifacts/c1/transcript.json").read_bytes() == b'{"segments": []}'
    assert _leftovers(root) == []


def test_write_bytes_replaces_atomically(store: LocalFolderStore, root: Path) -> None:
    key = "artifacts/c1/analysis.json"
    old = b"old " * 10_000
    store.write_bytes(key, old)

    with (root / key).open("rb") as reader:
        store.write_bytes(key, b"new")
        # Rename, not rewrite in place: a reader that opened the old file still reads all of it.
        assert reader.read() == old
    assert store.read_bytes(key) == b"new"
    assert _leftovers(root) == []


def test_upload_file_copies_and_leaves_no_temp_files(
    store: LocalFolderStore, root: Path, tmp_path: Path
) -> None:
    source = tmp_path / "audio.wav"
    source.write_bytes(b"RIFF" + bytes(5000))

    store.upload_file(source, "artifacts/c1/audio.wav", "audio/wav")
    store.upload_file(source, "artifacts/c1/audio.wav", "audio/wav")

    assert store.read_bytes("artifacts/c1/audio.wav") == source.read_bytes()
    assert _leftovers(root) == []


# ------------------------------------------------------------------------- escaping the root


@pytest.mark.parametrize(
    "key", ["../x", "incoming/../../x", "../bucket-sibling/file.txt", "/etc/passwd"]
)
def test_keys_escaping_the_root_are_refused(
    store: LocalFolderStore, tmp_path: Path, key: str
) -> None:
    with pytest.raises(StorageError, match="outside the bucket"):
        store.read_bytes(key)
    with pytest.raises(StorageError, match="outside the bucket"):
        store.stat(key)
    with pytest.raises(StorageError, match="outside the bucket"):
        store.write_bytes(key, b"evil")
    with pytest.raises(StorageError, match="outside the bucket"):
        list(store.list_objects(key))
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "bucket-sibling").exists()


def test_symlink_out_of_the_root_is_refused(
    store: LocalFolderStore, root: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "keys.txt").write_bytes(b"secret")
    (root / "incoming" / "link").symlink_to(secret, target_is_directory=True)

    with pytest.raises(StorageError, match="outside the bucket"):
        store.read_bytes("incoming/link/keys.txt")


def test_dot_dot_inside_the_root_is_allowed(store: LocalFolderStore) -> None:
    assert store.read_bytes("incoming/team/../a.txt") == FILES["incoming/a.txt"]


# ------------------------------------------------------------------------- open_object_store


def test_file_url_opens_a_local_folder(root: Path) -> None:
    store = open_object_store(root.as_uri())

    assert isinstance(store, LocalFolderStore)
    assert store.root == root.resolve()
    assert store.read_bytes("incoming/a.txt") == FILES["incoming/a.txt"]


def test_file_url_is_percent_decoded_and_localhost_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "my bucket"
    folder.mkdir()

    encoded = open_object_store(folder.as_uri())
    assert "%20" in folder.as_uri()
    assert isinstance(encoded, LocalFolderStore) and encoded.root == folder.resolve()
    with_host = open_object_store(f"file://localhost{folder}")
    assert isinstance(with_host, LocalFolderStore) and with_host.root == folder.resolve()


def test_plain_absolute_path_is_accepted(root: Path) -> None:
    store = open_object_store(str(root))

    assert isinstance(store, LocalFolderStore)
    assert store.root == root.resolve()


@pytest.mark.parametrize(
    "url", ["data/bucket", "./bucket", "file:data/bucket", "file://data/bucket"]
)
def test_relative_paths_are_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="must be an absolute file:/// URL") as caught:
        open_object_store(url)
    assert repr(url) in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:///prefix", "needs a bucket name: s3://bucket/prefix"),
        ("supabase:///prefix", "needs a bucket name: supabase://bucket/prefix"),
        ("supabase://bucket/prefix", "needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"),
    ],
)
def test_remote_urls_missing_parts_are_explained(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_object_store(url)


@pytest.mark.parametrize("url", ["ftp://host/bucket", "gs://bucket/prefix"])
def test_unknown_schemes_are_rejected(url: str) -> None:
    scheme = url.split(":", 1)[0]
    with pytest.raises(ValueError, match=f"unsupported CSCOACH_BUCKET_URL scheme '{scheme}'"):
        open_object_store(url)
