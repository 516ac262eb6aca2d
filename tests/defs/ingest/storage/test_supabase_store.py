"""Proves the Supabase Storage backend against an HTTP double of the Storage REST API.

The real supabase-py client does every request (tests/support/fake_supabase_storage.py), so
URL building, headers, multipart bodies and storage3's error parsing are exercised for real.

`SupabaseObjectStore` lists more than 1,000 objects through the flat, cursor-paged list-v2
endpoint, and the same set folder by folder (offset paging, nested folders) when the server
lacks list-v2, deciding that once per store; both modes agree on every prefix, skip the
dashboard's `.emptyFolderPlaceholder` files and carry size, time, ETag and version token. `stat`
returns the user metadata with lower-case keys; bytes and files round-trip under the root
prefix with their content types; artifacts land under their own keys and never replace an
original; a missing object is `ObjectNotFound`; a wrong key is a `StorageError` that names
SUPABASE_SERVICE_ROLE_KEY without containing the key; 503/429 answers and dropped connections
are retried, persistent failures become a `StorageError` naming the operation; the fingerprint
comes from the ETag without a download; `open_object_store` builds the store from a
supabase:// URL and its `SupabaseOptions` (whose repr never shows the key) and rejects one
without credentials. Retries wait the delays of the shared full-jitter backoff
(`resilience.backoff_delays`), drawn only once a call has failed.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from cscoach_pipeline.defs.ingest.resources import ConsultationArtifacts
from cscoach_pipeline.defs.ingest.storage import (
    ObjectNotFound,
    StorageError,
    SupabaseOptions,
    open_object_store,
)
from cscoach_pipeline.defs.ingest.storage import supabase as supabase_backend
from cscoach_pipeline.defs.ingest.storage.supabase import SupabaseObjectStore
from cscoach_pipeline.resilience import backoff_delays
from tests.support.fake_supabase_storage import FakeSupabaseStorage

KEY = "test-service-role-key-0123456789"
BUCKET = "recordings"
ROOT = "tenant-a"
T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)

# A small nested tree, plus things that must never be listed under ROOT/incoming/.
TREE: dict[str, bytes] = {
    "incoming/a.txt": b"Agent: hello\n",
    "incoming/team-a/agent-1/call-1.wav": b"RIFF" + bytes(40),
    "incoming/team-a/agent-1/call-2.wav": b"RIFF" + bytes(41),
    "incoming/team-a/agent-2/notes.txt": "고객: 안녕하세요\n".encode(),
    "incoming/team-b/deep/er/still/c.mp3": b"ID3" + bytes(10),
    "incoming/team-ab.txt": b"a file next to the team-a folder",
    "incoming/with space/ü%41.wav": b"odd characters",
}
NOISE: dict[str, bytes] = {
    f"{ROOT}/incoming/.emptyFolderPlaceholder": b"",
    f"{ROOT}/incoming/team-b/.emptyFolderPlaceholder": b"",
    f"{ROOT}/artifacts/c1/analysis.json": b"{}",
    f"{ROOT}-other/incoming/x.wav": b"another tenant",
    "incoming/top-level.wav": b"outside the root prefix",
}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


_OPENED: list[SupabaseObjectStore] = []


def _store(
    fake: FakeSupabaseStorage, bucket: str = BUCKET, root: str = ROOT, **kwargs: object
) -> SupabaseObjectStore:
    options: dict[str, object] = {"url": fake.url, "key": KEY, "backoff_base_s": 0.001}
    options.update(kwargs)
    store = SupabaseObjectStore(bucket, root, **options)  # type: ignore[arg-type]
    _OPENED.append(store)
    return store


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


def _fill(fake: FakeSupabaseStorage) -> None:
    for index, (key, data) in enumerate(TREE.items()):
        fake.put(f"{ROOT}/{key}", data, updated_at=T0 + timedelta(minutes=index))
    for key, data in NOISE.items():
        fake.put(key, data)


@pytest.fixture
def fake() -> Iterator[FakeSupabaseStorage]:
    with FakeSupabaseStorage(service_key=KEY, buckets=(BUCKET,)) as server:
        yield server


@pytest.fixture
def store(fake: FakeSupabaseStorage) -> SupabaseObjectStore:
    return _store(fake)


# ----------------------------------------------------------------------------------- listing


def test_list_v2_pages_through_more_than_a_thousand_objects(
    fake: FakeSupabaseStorage, store: SupabaseObjectStore
) -> None:
    expected = {f"incoming/team-{i % 4}/agent-{i % 7}/call-{i:05d}.wav" for i in range(2500)}
    for key in expected:
        fake.put(f"{ROOT}/{key}", key.encode(), updated_at=T0)
    for key, data in NOISE.items():
        fake.put(key, data)

    listed = list(store.list_objects("incoming/"))

    assert [obj.key for obj in listed] == sorted(expected)
    bodies = [r.json for r in fake.requests if r.route == "list-v2"]
    assert len(bodies) == 3 and fake.count("list") == 0
    assert bodies[0] == {"prefix": f"{ROOT}/incoming/", "limit": 1000, "with_delimiter": False}
    assert bodies[1]["cursor"] and bodies[2]["cursor"] != bodies[1]["cursor"]
    one = listed[0]
    data = one.key.encode()
    assert (one.size, one.modified, one.etag) == (len(data), T0, _md5(data))
    assert one.version_token == f"{len(data)}:{_md5(data)}"


@pytest.mark.parametrize("missing", ["route", "feature", "bucket"])
def test_without_list_v2_lists_folder_by_folder(missing: str) -> None:
    with FakeSupabaseStorage(
        service_key=KEY, buckets=(BUCKET,), list_v2=False, list_v2_missing=missing
    ) as fake:
        store = _store(fake)
        big = {f"incoming/big/f{i:04d}.wav" for i in range(1200)}  # > one page of 1000
        for key in big:
            fake.put(f"{ROOT}/{key}", b"x" * 3, updated_at=T0)
        _fill(fake)

        keys = [obj.key for obj in store.list_objects("incoming/")]

        assert sorted(keys) == sorted(big | set(TREE))
        assert len(keys) == len(set(keys))
        assert fake.count("list-v2") == 1
        bodies = [r.json for r in fake.requests if r.route == "list"]
        assert {(b["limit"], b["sortBy"]["column"]) for b in bodies} == {(1000, "name")}
        assert [b["offset"] for b in bodies if b["prefix"] == f"{ROOT}/incoming/big"] == [0, 1000]
        assert {b["prefix"] for b in bodies} >= {
            f"{ROOT}/incoming",
            f"{ROOT}/incoming/team-a/agent-1",
            f"{ROOT}/incoming/team-b/deep/er/still",
        }
        deep = next(o for o in store.list_objects("incoming/team-b/") if o.key.endswith(".mp3"))
        data = TREE[deep.key]
        assert (deep.size, deep.etag) == (len(data), _md5(data))
        assert deep.modified == T0 + timedelta(minutes=list(TREE).index(deep.key))

        # The decision is kept: later listings never ask for list-v2 again.
        fake.reset_requests()
        assert {o.key for o in store.list_objects("incoming/team-a/")} == {
            k for k in TREE if k.startswith("incoming/team-a/")
        }
        assert fake.count("list-v2") == 0


@pytest.mark.parametrize(
    "prefix", ["", "incoming/", "incoming", "incoming/team-a", "incoming/team-a/", "missing/"]
)
def test_both_listing_modes_agree_on_prefixes(prefix: str) -> None:
    results = []
    for list_v2 in (True, False):
        with FakeSupabaseStorage(service_key=KEY, buckets=(BUCKET,), list_v2=list_v2) as fake:
            _fill(fake)
            results.append(
                sorted((o.key, o.version_token) for o in _store(fake).list_objects(prefix))
            )
    expected = sorted(
        [k for k in TREE if k.startswith(prefix)]
        + (["artifacts/c1/analysis.json"] if "artifacts/".startswith(prefix) else [])
    )
    assert [key for key, _ in results[0]] == expected
    assert results[0] == results[1]


def test_listing_skips_placeholders_and_other_roots(
    fake: FakeSupabaseStorage, store: SupabaseObjectStore
) -> None:
    _fill(fake)
    keys = {obj.key for obj in store.list_objects("")}
    assert keys == set(TREE) | {"artifacts/c1/analysis.json"}
    assert not any(key.endswith(".emptyFolderPlaceholder") for key in keys)


# ------------------------------------------------------------------------------ single objects


def test_stat_returns_size_etag_time_and_user_metadata(
    fake: FakeSupabaseStorage, store: SupabaseObjectStore
) -> None:
    data = b"RIFF" + bytes(100)
    fake.put(
        f"{ROOT}/incoming/team-a/call.wav",
        data,
        metadata={"Agent-Id": "A-17", "Team": "billing", "priority": 2},
        updated_at=T0,
        content_type="audio/wav",
    )

    obj = store.stat("incoming/team-a/call.wav")

    assert obj.key == "incoming/team-a/call.wav"
    assert (obj.size, obj.etag, obj.modified) == (len(data), _md5(data), T0)
    assert obj.metadata == {"agent-id": "A-17", "team": "billing", "priority": "2"}
    assert obj.version_token == f"{len(data)}:{_md5(data)}"
    assert fake.count("info") == 1 and fake.count("download") == 0


def test_round_trip_under_the_root_prefix(
    fake: FakeSupabaseStorage, store: SupabaseObjectStore, tmp_path: Path
) -> None:
    key = "artifacts/c 1/전사본 %41.json"
    store.write_bytes(key, b'{"ok": true}', "application/json")
    source = tmp_path / "audio.wav"
    source.write_bytes(b"RIFF" + bytes(range(256)) * 20)
    store.upload_file(source, "artifacts/c 1/audio.wav")

    written = fake.get(f"{ROOT}/{key}")
    uploaded = fake.get(f"{ROOT}/artifacts/c 1/audio.wav")
    assert written is not None and written.content_type == "application/json"
    assert uploaded is not None and uploaded.content_type == mimetypes.guess_type("a.wav")[0]
    assert store.read_bytes(key) == b'{"ok": true}'
    destination = tmp_path / "copy.wav"
    store.download_to("artifacts/c 1/audio.wav", destination)
    assert destination.read_bytes() == source.read_bytes()
    assert (
        store.sha256("artifacts/c 1/audio.wav") == hashlib.sha256(source.read_bytes()).hexdigest()
    )
    assert store.locate(key) == f"supabase://{BUCKET}/{ROOT}/{key}"
    assert store.url == f"supabase://{BUCKET}/{ROOT}"

    uploads = [r for r in fake.requests if r.route == "upload"]
    assert {r.headers["x-upsert"] for r in uploads} == {"true"}
    assert uploads[0].path.startswith(f"/storage/v1/object/{BUCKET}/{ROOT}/artifacts/c%201/")

    store.write_bytes(key, b'{"ok": false}')  # upsert: rewriting an artifact is fine
    assert store.read_bytes(key) == b'{"ok": false}'


def test_artifacts_never_overwrite_the_original(
    fake: FakeSupabaseStorage, store: SupabaseObjectStore
) -> None:
    original_key = "incoming/team-a/call.wav"
    original = fake.put(f"{ROOT}/{original_key}", b"RIFF-original", updated_at=T0)
    etag_before = original.etag
    artifacts = ConsultationArtifacts(store, "artifacts/", "team-a__call")

    written = [
        artifacts.write_json("transcript.json", {"segments": []}),
        artifacts.write_text("report.md", "# report"),
        artifacts.write_json("private/transcript.json", {"segments": ["raw"]}),
    ]

    assert original_key not in written
    assert all(key.startswith("artifacts/team-a__call/") for key in written)
    after = fake.get(f"{ROOT}/{original_key}")
    assert after is not None and (after.data, after.etag) == (b"RIFF-original", etag_before)
    assert store.read_bytes(original_key) == b"RIFF-original"
    assert artifacts.read_json("private/transcript.json") == {"segments": ["raw"]}


def test_missing_object_is_object_not_found(
    store: SupabaseObjectStore, fake: FakeSupabaseStorage, tmp_path: Path
) -> None:
    with pytest.raises(ObjectNotFound, match=r"incoming/gone\.wav"):
        store.stat("incoming/gone.wav")
    with pytest.raises(ObjectNotFound):
        store.read_bytes("incoming/gone.wav")
    with pytest.raises(ObjectNotFound):
        store.download_to("incoming/gone.wav", tmp_path / "gone.wav")
    assert not (tmp_path / "gone.wav").exists()
    assert store.read_optional("incoming/gone.wav") is None
    assert fake.count("info") == 1  # not found is never retried


def test_keys_escaping_the_prefix_are_rejected(store: SupabaseObjectStore) -> None:
    for key in ("../other/x.wav", "/abs.wav", "incoming/./x.wav"):
        with pytest.raises(StorageError, match="outside"):
            store.read_bytes(key)


def test_missing_bucket_names_the_bucket(fake: FakeSupabaseStorage) -> None:
    store = _store(fake, bucket="no-such-bucket", root="")
    assert list(store.list_objects("incoming/")) == []  # like the real server's listings
    for action in (lambda: store.stat("a.wav"), lambda: store.write_bytes("a.json", b"{}")):
        with pytest.raises(StorageError, match="'no-such-bucket' does not exist") as info:
            action()
        assert not isinstance(info.value, ObjectNotFound)


# -------------------------------------------------------------------------- errors and retries


def test_wrong_key_is_a_clear_error_without_the_key(fake: FakeSupabaseStorage) -> None:
    wrong = "wrong-secret-key-value-987654"
    store = _store(fake, key=wrong)
    fake.put(f"{ROOT}/incoming/a.wav", b"x")

    for action in (
        lambda: list(store.list_objects("incoming/")),
        lambda: store.stat("incoming/a.wav"),
        lambda: store.write_bytes("artifacts/x.json", b"{}"),
    ):
        with pytest.raises(StorageError) as info:
            action()
        message = str(info.value)
        assert "SUPABASE_SERVICE_ROLE_KEY" in message
        assert wrong not in message and KEY not in message
        assert not isinstance(info.value, ObjectNotFound)
    # Credentials are not retried, and never taken for a missing list-v2.
    assert fake.count() == 3
    assert store._list_v2 is None


def test_transient_failures_are_retried(
    fake: FakeSupabaseStorage, store: SupabaseObjectStore
) -> None:
    fake.put(f"{ROOT}/incoming/a.wav", b"RIFF")

    fake.fail_next("download", times=2, status=503)
    assert store.read_bytes("incoming/a.wav") == b"RIFF"
    assert fake.count("download") == 3

    fake.fail_next("list-v2", times=1, status=429)
    fake.drop_next("list-v2", times=1)
    assert [o.key for o in store.list_objects("incoming/")] == ["incoming/a.wav"]
    assert fake.count("list-v2") == 3 and fake.count("list") == 0

    fake.drop_next("upload", times=2)
    store.write_bytes("artifacts/a.json", b"{}", "application/json")
    assert fake.count("upload") == 3 and store.read_bytes("artifacts/a.json") == b"{}"


def test_retries_wait_the_shared_backoff(
    fake: FakeSupabaseStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[tuple[tuple[int, float, float], list[float]]] = []
    slept: list[float] = []

    def recording_delays(attempts: int, base_s: float, cap_s: float, rng: object) -> list[float]:
        delays = backoff_delays(attempts, base_s, cap_s, rng)  # type: ignore[arg-type]
        drawn.append(((attempts, base_s, cap_s), delays))
        return delays

    monkeypatch.setattr(supabase_backend, "backoff_delays", recording_delays)
    monkeypatch.setattr(supabase_backend, "time", SimpleNamespace(sleep=slept.append))
    store = _store(fake, max_attempts=4, backoff_base_s=0.5, backoff_max_s=0.75)
    fake.put(f"{ROOT}/incoming/a.wav", b"RIFF")

    assert store.read_bytes("incoming/a.wav") == b"RIFF"
    assert drawn == [] and slept == []  # no failure, no delays drawn

    fake.fail_next("download", times=3, status=503)
    assert store.read_bytes("incoming/a.wav") == b"RIFF"
    ((arguments, delays),) = drawn
    assert arguments == (3, 0.5, 0.75)  # one delay before each retry, capped at backoff_max_s
    assert slept == delays
    assert all(0.0 <= d <= min(0.75, 0.5 * 2**i) for i, d in enumerate(delays))


def test_persistent_failures_name_the_operation(fake: FakeSupabaseStorage) -> None:
    store = _store(fake, max_attempts=3)
    fake.put(f"{ROOT}/incoming/a.wav", b"RIFF")

    fake.fail_next("info", times=10, status=500)
    with pytest.raises(
        StorageError, match=r"stat of supabase://recordings/tenant-a/incoming/a\.wav"
    ):
        store.stat("incoming/a.wav")
    assert fake.count("info") == 3

    fake.fail_next("list-v2", times=10, status=500)
    with pytest.raises(StorageError, match=r"list .*after 3 attempt\(s\): HTTP 500"):
        list(store.list_objects("incoming/"))
    assert fake.count("list") == 0  # a failing list-v2 is not mistaken for a missing one

    unreachable = _store(fake, url="http://127.0.0.1:9", max_attempts=2)
    with pytest.raises(StorageError, match=r"download of .* after 2 attempt\(s\): ConnectError"):
        unreachable.read_bytes("incoming/a.wav")


# ---------------------------------------------------------------------- fingerprint, opening


def test_fingerprint_uses_the_etag_without_downloading(
    fake: FakeSupabaseStorage, store: SupabaseObjectStore
) -> None:
    data = b"RIFF" + bytes(5000)
    fake.put(f"{ROOT}/incoming/a.wav", data)
    fake.put(f"{ROOT}/incoming/copy-of-a.wav", data)

    listed = list(store.list_objects("incoming/"))
    prints = {store.fingerprint(obj) for obj in listed}

    assert prints == {f"etag:{_md5(data)}:{len(data)}"}
    assert fake.count("download") == 0 and fake.count("info") == 0


def test_open_object_store_builds_a_supabase_store(fake: FakeSupabaseStorage) -> None:
    fake.put(f"{ROOT}/incoming/a.wav", b"RIFF")
    options = SupabaseOptions(url=fake.url, key=KEY)
    assert KEY not in repr(options) and KEY not in str(options)
    store = open_object_store(f"supabase://{BUCKET}/{ROOT}", options)
    assert isinstance(store, SupabaseObjectStore)
    assert store.url == f"supabase://{BUCKET}/{ROOT}"
    assert [obj.key for obj in store.list_objects("incoming/")] == ["incoming/a.wav"]

    for url, key in ((None, KEY), (fake.url, None), (None, None)):
        with pytest.raises(ValueError, match="SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY") as info:
            open_object_store(f"supabase://{BUCKET}/{ROOT}", SupabaseOptions(url=url, key=key))
        assert KEY not in str(info.value)
    with pytest.raises(ValueError, match="needs a bucket name"):
        open_object_store("supabase:///prefix", options)
