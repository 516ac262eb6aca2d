"""Proves the local-folder bucket and the bucket URL parser on real files.

`LocalFolderStore` lists recursively in a stable, sorted order with keys relative to the root
in POSIX form; `stat`, `read_bytes`, `download_to` and the streaming `sha256` agree with the
file; `write_bytes`/`upload_file` replace files by rename (a reader holding the old file keeps
the whole old content) and leave no temp files; keys that escape the root ('..', absolute
paths, symlinks) raise `StorageError` and write nothing; a missing object is `ObjectNotFound`,
and so is a name too long for the filesystem (the sidecar of a 250-byte name). File names that
are not UTF-8 are listed as text: CP949/EUC-KR names decoded (and opened again through that
text key, by any store instance), names in no supported encoding as `\\xNN` escapes with a
`name_problem`. A write that fails midway (a full disk) leaves no temporary file and keeps the
previous artifact; ENOSPC/EDQUOT/EIO surface as `StorageDiskError`, other errors unchanged.
`open_object_store` accepts file:/// URLs and absolute paths and rejects relative paths
(including file://relative/path), unavailable and unknown schemes with clear messages.
"""

from __future__ import annotations

import errno
import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cscoach_pipeline.defs.ingest.storage import (
    LocalFolderStore,
    ObjectNotFound,
    StorageError,
    open_object_store,
)
from cscoach_pipeline.defs.ingest.storage.base import StorageDiskError
from cscoach_pipeline.defs.ingest.storage.local import UNDECODABLE_NAME

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


def _fill_the_disk_after(monkeypatch: pytest.MonkeyPatch, budget: int, code: int) -> None:
    """os.write into a temporary artifact writes `budget` bytes, then fails with `code`, as a
    disk that fills up mid-write does; every other write (logs, capture) is untouched."""
    real_write = os.write
    written = 0

    def write(fd: int, data: bytes | memoryview) -> int:
        nonlocal written
        if ".tmp-" not in os.readlink(f"/proc/self/fd/{fd}"):
            return real_write(fd, data)
        if written >= budget:
            raise OSError(code, os.strerror(code))
        count = real_write(fd, bytes(data[: budget - written]))
        written += count
        return count

    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.ENOSPC, "no space left on the bucket's disk"),
        (errno.EDQUOT, "disk quota exceeded on the bucket's disk"),
        (errno.EIO, "I/O error on the bucket's disk"),
    ],
)
def test_a_full_disk_leaves_no_partial_artifact(
    store: LocalFolderStore,
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    message: str,
) -> None:
    store.write_bytes("artifacts/c1/audio.wav", b"previous artifact")
    source = tmp_path / "audio.wav"
    source.write_bytes(os.urandom(3 * 1024 * 1024))
    _fill_the_disk_after(monkeypatch, 1024 * 1024 + 17, code)

    with pytest.raises(StorageDiskError, match=message) as caught:
        store.upload_file(source, "artifacts/c1/audio.wav", "audio/wav")
    with pytest.raises(StorageDiskError, match=message):
        store.write_bytes("artifacts/c1/transcript.json", b"x" * (2 * 1024 * 1024))

    assert isinstance(caught.value, StorageError)  # steps retry it as an outage
    assert _leftovers(root) == []
    assert store.read_bytes("artifacts/c1/audio.wav") == b"previous artifact"
    assert not (root / "artifacts/c1/transcript.json").exists()


def test_other_write_failures_clean_up_and_raise_as_they_are(
    store: LocalFolderStore, root: Path, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        store.upload_file(tmp_path / "missing.wav", "artifacts/c1/audio.wav")

    assert _leftovers(root) == []
    assert not (root / "artifacts/c1/audio.wav").exists()


# ------------------------------------------------------------------------- hostile file names


def _raw(root: Path, relative: bytes, data: bytes) -> None:
    path = os.fsencode(root) + b"/" + relative
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def test_cp949_names_are_listed_decoded_and_opened_by_that_key(
    store: LocalFolderStore, root: Path, tmp_path: Path
) -> None:
    _raw(root, b"incoming/" + "상담 기록.txt".encode("cp949"), b"cp949 name")
    _raw(root, b"incoming/" + "팀".encode("cp949") + "/통화.txt".encode(), b"cp949 folder")

    listed = {obj.key: obj for obj in store.list_objects("incoming")}

    assert {"incoming/상담 기록.txt", "incoming/팀/통화.txt"} <= set(listed)
    assert list(listed) == sorted(listed)
    for key in listed:
        key.encode("utf-8")  # valid text: the tables can hold it
    fresh = LocalFolderStore(root)  # a run in another process: no state from the listing
    obj = listed["incoming/상담 기록.txt"]
    assert obj.name_problem is None
    assert fresh.read_bytes(obj.key) == b"cp949 name"
    assert fresh.stat(obj.key) == obj
    assert fresh.sha256(obj.key) == hashlib.sha256(b"cp949 name").hexdigest()
    assert fresh.read_bytes("incoming/팀/통화.txt") == b"cp949 folder"
    fresh.download_to(obj.key, tmp_path / "copy.txt")
    assert (tmp_path / "copy.txt").read_bytes() == b"cp949 name"
    # Writing under the decoded folder name lands in the existing CP949 folder, not a twin.
    fresh.write_bytes("incoming/팀/통화.txt.meta.json", b"{}")
    assert sorted(os.listdir(os.fsencode(root / "incoming"))) == sorted(
        [b"a.txt", b"b.wav", b"team", "상담 기록.txt".encode("cp949"), "팀".encode("cp949")]
    )
    assert fresh.read_optional("incoming/팀/통화.txt.meta.json") == b"{}"


def test_undecodable_names_are_listed_escaped_with_their_problem(
    store: LocalFolderStore, root: Path
) -> None:
    _raw(root, b"incoming/caf\xe9-\xff.txt", b"latin-1 name")

    obj = next(o for o in store.list_objects("incoming") if "caf" in o.key)

    assert obj.key == "incoming/caf\\xe9-\\xff.txt"
    assert obj.name_problem == UNDECODABLE_NAME
    assert store.stat(obj.key) == obj
    assert LocalFolderStore(root).read_bytes(obj.key) == b"latin-1 name"
    assert all(o.name_problem is None for o in store.list_objects("incoming") if o != obj)


def test_a_cp949_name_that_collides_with_a_utf8_one_is_told_apart(
    store: LocalFolderStore, root: Path
) -> None:
    _raw(root, "incoming/중복.txt".encode(), b"utf-8 twin")
    _raw(root, b"incoming/" + "중복.txt".encode("cp949"), b"cp949 twin")

    listed = [o for o in store.list_objects("incoming") if o.key.endswith("txt")]
    by_key = {o.key: o for o in listed}

    assert len(by_key) == len(listed)  # no key listed twice
    assert by_key["incoming/중복.txt"].name_problem is None
    assert store.read_bytes("incoming/중복.txt") == b"utf-8 twin"
    (twin,) = [o for o in listed if o.name_problem]
    assert "in UTF-8" in twin.name_problem and "rename one of them" in twin.name_problem
    assert store.read_bytes(twin.key) == b"cp949 twin"


def test_a_name_too_long_for_the_filesystem_is_no_such_object(
    store: LocalFolderStore, root: Path
) -> None:
    name = "상" * 82 + ".txt"  # 250 bytes: fine; its sidecar name is not
    (root / "incoming" / name).write_bytes(b"long name")
    sidecar = f"incoming/{name}.meta.json"

    assert store.read_bytes(f"incoming/{name}") == b"long name"
    assert store.read_optional(sidecar) is None
    with pytest.raises(ObjectNotFound):
        store.stat(sidecar)
    assert f"incoming/{name}" in {o.key for o in store.list_objects("incoming")}


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
