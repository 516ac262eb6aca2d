"""Proves the S3 bucket backend against real HTTP peers on loopback.

Against moto's S3 server (a real S3 REST endpoint), `open_object_store("s3://bucket/prefix",
S3Options(endpoint_url=...))` gives an `S3ObjectStore` on that endpoint (one per URL and
options) whose `list_objects` yields keys relative to the URL's prefix with sizes, ETags and
`version_token`s matching `stat`, treats its prefix as a folder (like the local store),
follows continuation tokens past 1,000 objects and skips console folder placeholders; `stat`
returns S3 user metadata with lower-case names; `read_bytes`, `download_to`, `write_bytes`,
`upload_file` and the streaming `sha256` round-trip bytes and content types; `locate` gives
s3://bucket/prefix/key; `fingerprint` comes from the ETag without downloading (equal for
equal content under two keys). A missing object is `ObjectNotFound`; keys escaping the
prefix are `StorageError` and touch nothing.

The endpoint and addressing style come from the options alone (CSCOACH_S3_ADDRESSING_STYLE in
the environment changes nothing); a custom endpoint means path style unless told otherwise,
AWS itself `auto`, and an unknown style is refused when the options are built. Against a
recording HTTP server, the store sends path-style URLs (`/bucket/prefix/key`) and no
flexible-checksum headers (`when_required`), which a default boto3 client does send.
Against servers that always fail: 503 SlowDown and 500 InternalError are retried exactly
`max_attempts` times (botocore standard mode) and end as `StorageError`, for every operation,
including boto3's transfer-manager calls (`upload_file`, `download_to`); an expired token
(403 ExpiredToken) is not retried and says the credentials expired; a refused connection is
retried and ends as "failed after retries". No message or traceback contains the secret
access key or the session token.
"""

from __future__ import annotations

import hashlib
import os
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from cscoach_pipeline.defs.ingest.storage import (
    ObjectNotFound,
    S3Options,
    StorageError,
    _open_cached,
    open_object_store,
)
from cscoach_pipeline.defs.ingest.storage.s3 import S3ObjectStore
from tests.support.s3_server import (
    EXPIRED_TOKEN,
    INTERNAL_ERROR,
    SLOW_DOWN,
    FailingS3,
    S3Bucket,
    S3Failure,
    closed_port_endpoint,
    failing_s3_server,
    fresh_bucket,
    use_test_credentials,
)

ROOT = "tenant/a"
FILES: dict[str, bytes] = {
    "incoming/a.wav": b"RIFF....WAVE",
    "incoming/team/b.txt": "Customer: 안녕하세요\n".encode(),
    "incoming/team/x/c.mp3": b"ID3" + bytes(100),
    "incoming/상담 1.m4a": b"ftypM4A " + bytes(20),
    "artifacts/c1/audio.wav": b"RIFF" + bytes(40),
}
# Around the store's root: none of these may show up in its `incoming` listing.
NEIGHBOURS: dict[str, bytes] = {
    "incoming/top-level.wav": b"bucket root, outside the store's prefix",
    "tenant/ab/incoming/x.wav": b"sibling prefix sharing the characters 'tenant/a'",
    "tenant/other/incoming/y.wav": b"another tenant",
    f"{ROOT}/incoming-archive/old.wav": b"a sibling folder of incoming/",
    f"{ROOT}/incoming.txt": b"a file named like the folder",
    f"{ROOT}/incoming/": b"",  # console folder placeholder
    f"{ROOT}/incoming/team/": b"",
}

# Distinctive credentials for the failure tests: a leak would be unmistakable.
ACCESS_KEY = "AKIACSCOACHTEST"
SECRET = "wJalrXUtnFEMI-cscoach-secret-K7MDENG"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE-cscoach-session-token"
FAIL_BUCKET = "cscoach-failing"


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    yield fresh_bucket(s3_endpoint, monkeypatch)
    _open_cached.cache_clear()


@pytest.fixture
def store(bucket: S3Bucket) -> S3ObjectStore:
    opened = open_object_store(bucket.url(ROOT), bucket.options)
    assert isinstance(opened, S3ObjectStore)
    return opened


@pytest.fixture
def seeded(bucket: S3Bucket) -> S3Bucket:
    for key, data in FILES.items():
        bucket.client.put_object(Bucket=bucket.name, Key=f"{ROOT}/{key}", Body=data)
    for key, data in NEIGHBOURS.items():
        bucket.client.put_object(Bucket=bucket.name, Key=key, Body=data)
    return bucket


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _count_calls(store: S3ObjectStore, event: str) -> list[str]:
    """Records botocore's own per-request events (e.g. before-send.s3.GetObject)."""
    seen: list[str] = []
    store._client.meta.events.register(event, lambda **kwargs: seen.append(event))
    return seen


# ----------------------------------------------------------------------------- opening


def test_open_object_store_parses_bucket_prefix_and_caches(bucket: S3Bucket) -> None:
    options = bucket.options
    store = open_object_store(f"s3://{bucket.name}/{ROOT}/", options)
    assert isinstance(store, S3ObjectStore)
    assert (store.bucket, store.root, store.url) == (
        bucket.name,
        ROOT,
        f"s3://{bucket.name}/{ROOT}",
    )
    assert store._client.meta.endpoint_url == bucket.endpoint
    # One client per URL and options, equal options built again included.
    assert (
        open_object_store(f"s3://{bucket.name}/{ROOT}/", S3Options(endpoint_url=bucket.endpoint))
        is store
    )
    at_root = open_object_store(f"s3://{bucket.name}", options)
    assert isinstance(at_root, S3ObjectStore)
    assert (at_root.root, at_root.url) == ("", f"s3://{bucket.name}")
    assert open_object_store(f"s3://{bucket.name}/a%20b", options).root == "a b"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="needs a bucket name"):
        open_object_store("s3:///just-a-path", options)


# ----------------------------------------------------------------------------- listing


def test_list_objects_yields_relative_keys_sizes_and_etags(
    seeded: S3Bucket, store: S3ObjectStore
) -> None:
    listed = {obj.key: obj for obj in store.list_objects("incoming")}
    incoming = {k: v for k, v in FILES.items() if k.startswith("incoming/")}
    assert set(listed) == set(incoming)  # relative keys; neighbours and placeholders left out
    for key, data in incoming.items():
        obj = listed[key]
        assert obj.size == len(data)
        assert obj.etag == _md5(data)
        assert obj.version_token == f"{len(data)}:{_md5(data)}"
        assert obj.modified.tzinfo is not None  # the sensor subtracts it from an aware now
        assert obj.metadata == {}
        assert store.stat(key).version_token == obj.version_token  # listing and stat agree

    assert {o.key for o in store.list_objects("incoming/")} == set(listed)
    assert {o.key for o in store.list_objects("")} == set(FILES) | {
        "incoming-archive/old.wav",
        "incoming.txt",
    }
    assert list(store.list_objects("nothing-here/")) == []
    assert list(store.list_objects("incoming/a.wav")) == []  # a file is not a folder


def test_list_objects_at_the_bucket_root(seeded: S3Bucket) -> None:
    store = open_object_store(seeded.url(), seeded.options)
    keys = {obj.key for obj in store.list_objects("incoming/")}
    assert keys == {"incoming/top-level.wav"}
    everything = {obj.key for obj in store.list_objects("")}
    assert everything == {k for k in seeded.object_keys() if not k.endswith("/")}


def test_list_objects_pages_past_1000_objects(bucket: S3Bucket, store: S3ObjectStore) -> None:
    count = 2_100  # three pages of at most 1,000
    expected = {f"incoming/batch/{i:05d}.wav" for i in range(count)}
    placeholders = [f"{ROOT}/incoming/batch/", f"{ROOT}/incoming/zz-empty-folder/"]

    def put(key: str) -> None:
        body = b"" if key.endswith("/") else key.encode()
        bucket.client.put_object(Bucket=bucket.name, Key=key, Body=body)

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(put, [f"{ROOT}/{k}" for k in sorted(expected)] + placeholders))

    pages = _count_calls(store, "after-call.s3.ListObjectsV2")
    listed = [obj.key for obj in store.list_objects("incoming")]
    assert len(listed) == count
    assert set(listed) == expected
    assert len(pages) == 3  # followed the continuation token twice
    first = f"incoming/batch/{0:05d}.wav"
    assert next(o for o in store.list_objects("incoming") if o.key == first).size == len(
        f"{ROOT}/{first}"
    )


# ----------------------------------------------------------------------------- objects


def test_stat_returns_user_metadata_with_lower_case_names(
    bucket: S3Bucket, store: S3ObjectStore
) -> None:
    data = b"RIFF" + bytes(64)
    bucket.client.put_object(
        Bucket=bucket.name,
        Key=f"{ROOT}/incoming/call.wav",
        Body=data,
        Metadata={"agent_id": "A-17", "Customer-Tier": "gold"},
    )
    obj = store.stat("incoming/call.wav")
    assert obj.key == "incoming/call.wav"
    assert obj.metadata == {"agent_id": "A-17", "customer-tier": "gold"}
    assert (obj.size, obj.etag) == (len(data), _md5(data))
    assert obj.version_token == f"{len(data)}:{_md5(data)}"
    assert obj.modified.tzinfo is not None


def test_bytes_and_files_round_trip(bucket: S3Bucket, store: S3ObjectStore, tmp_path: Path) -> None:
    payload = '{"summary": "고객 응대"}'.encode()
    store.write_bytes("artifacts/c1/analysis.json", payload, "application/json")
    raw = bucket.client.get_object(Bucket=bucket.name, Key=f"{ROOT}/artifacts/c1/analysis.json")
    assert raw["Body"].read() == payload  # the server stored exactly what the store sent
    assert raw["ContentType"] == "application/json"
    assert store.read_bytes("artifacts/c1/analysis.json") == payload
    assert store.read_optional("artifacts/c1/analysis.json") == payload

    store.write_bytes("artifacts/c1/analysis.json", b"{}")  # overwrite in place
    assert store.read_bytes("artifacts/c1/analysis.json") == b"{}"

    big = os.urandom(2_500_000)  # several 1 MiB chunks for the streaming sha256
    source = tmp_path / "audio.wav"
    source.write_bytes(big)
    store.upload_file(source, "artifacts/c1/audio.wav", "audio/wav")
    head = bucket.client.head_object(Bucket=bucket.name, Key=f"{ROOT}/artifacts/c1/audio.wav")
    assert (head["ContentLength"], head["ContentType"]) == (len(big), "audio/wav")

    destination = tmp_path / "downloaded.wav"
    store.download_to("artifacts/c1/audio.wav", destination)
    assert destination.read_bytes() == big
    assert store.sha256("artifacts/c1/audio.wav") == hashlib.sha256(big).hexdigest()
    assert store.sha256("artifacts/c1/analysis.json") == hashlib.sha256(b"{}").hexdigest()

    unicode_key = "incoming/팀 A/상담 #1 (최종).wav"
    store.write_bytes(unicode_key, b"RIFF")
    assert unicode_key in {o.key for o in store.list_objects("incoming")}
    assert store.read_bytes(unicode_key) == b"RIFF"
    assert f"{ROOT}/{unicode_key}" in bucket.object_keys()


def test_locate_names_the_full_s3_address(bucket: S3Bucket, store: S3ObjectStore) -> None:
    assert store.locate("artifacts/c1/audio.wav") == (
        f"s3://{bucket.name}/{ROOT}/artifacts/c1/audio.wav"
    )
    at_root = open_object_store(bucket.url(), bucket.options)
    assert at_root.locate("incoming/a.wav") == f"s3://{bucket.name}/incoming/a.wav"


def test_fingerprint_uses_the_etag_without_downloading(
    bucket: S3Bucket, store: S3ObjectStore
) -> None:
    same = b"the same recording" * 100
    store.write_bytes("incoming/one.wav", same)
    store.write_bytes("incoming/copy/two.wav", same)
    store.write_bytes("incoming/three.wav", same + b"!")
    gets = _count_calls(store, "before-send.s3.GetObject")

    listed = {o.key: o for o in store.list_objects("incoming")}
    one, two, three = (
        listed[k] for k in ("incoming/one.wav", "incoming/copy/two.wav", "incoming/three.wav")
    )
    assert store.fingerprint(one) == f"etag:{_md5(same)}:{len(same)}"
    assert store.fingerprint(one) == store.fingerprint(two)
    assert store.fingerprint(one) != store.fingerprint(three)
    assert store.fingerprint(store.stat("incoming/one.wav")) == store.fingerprint(one)
    assert gets == []  # no object was downloaded


def test_missing_object_is_object_not_found(store: S3ObjectStore, tmp_path: Path) -> None:
    destination = tmp_path / "never.wav"
    calls: list[Callable[[], Any]] = [
        lambda: store.stat("incoming/missing.wav"),
        lambda: store.read_bytes("incoming/missing.wav"),
        lambda: store.download_to("incoming/missing.wav", destination),
        lambda: store.sha256("incoming/missing.wav"),
    ]
    for call in calls:
        with pytest.raises(ObjectNotFound, match=r"incoming/missing\.wav"):
            call()
    assert not destination.exists()
    assert store.read_optional("incoming/missing.wav") is None


def test_keys_escaping_the_prefix_are_refused(
    bucket: S3Bucket, store: S3ObjectStore, tmp_path: Path
) -> None:
    bucket.client.put_object(Bucket=bucket.name, Key="x", Body=b"outside the prefix")
    before = bucket.object_keys()
    source = tmp_path / "f.wav"
    source.write_bytes(b"x")
    calls: list[Callable[[str], Any]] = [
        store.stat,
        store.read_bytes,
        lambda key: store.download_to(key, tmp_path / "out"),
        lambda key: store.write_bytes(key, b"x"),
        lambda key: store.upload_file(source, key),
        store.sha256,
        store.locate,
        lambda key: list(store.list_objects(key)),
    ]
    for key in ("../x", "incoming/../../x", "..", "/etc/passwd"):
        for call in calls:
            with pytest.raises(StorageError, match="outside the bucket prefix") as caught:
                call(key)
            assert not isinstance(caught.value, ObjectNotFound)
    assert bucket.object_keys() == before
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- client setup


def test_client_uses_path_style_and_checksums_only_when_required(
    bucket: S3Bucket, store: S3ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = store._client.meta.config
    assert store._client.meta.endpoint_url == bucket.endpoint
    assert config.s3["addressing_style"] == "path"
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.retries == {"total_max_attempts": 5, "mode": "standard"}


def _client_of(url: str, options: S3Options) -> Any:
    opened = open_object_store(url, options)  # building a client makes no request
    assert isinstance(opened, S3ObjectStore)
    return opened._client


def test_endpoint_and_addressing_come_from_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    use_test_credentials(monkeypatch)
    # The environment the store used to read itself: it must change nothing now.
    monkeypatch.setenv("CSCOACH_S3_ADDRESSING_STYLE", "virtual")
    endpoint = "http://127.0.0.1:9"
    try:
        custom = _client_of("s3://b/p", S3Options(endpoint_url=endpoint))
        assert custom.meta.endpoint_url == endpoint
        assert custom.meta.config.s3["addressing_style"] == "path"  # the custom-endpoint default
        told = _client_of("s3://b/p", S3Options(endpoint_url=endpoint, addressing_style="virtual"))
        assert told.meta.config.s3["addressing_style"] == "virtual"
        for on_aws in (S3Options(), S3Options(endpoint_url="", addressing_style="")):
            client = _client_of("s3://b/p", on_aws)
            assert client.meta.config.s3["addressing_style"] == "auto"
            assert "amazonaws.com" in client.meta.endpoint_url
        with pytest.raises(ValueError, match="CSCOACH_S3_ADDRESSING_STYLE must be auto, path or"):
            S3Options(addressing_style="sideways")
    finally:
        _open_cached.cache_clear()


def _checksum_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name.startswith(("x-amz-checksum-", "x-amz-sdk-checksum", "x-amz-trailer"))
        or name == "x-amz-decoded-content-length"
        or "aws-chunked" in value
    }


def test_requests_are_path_style_without_flexible_checksums(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What goes on the wire, seen by a recording server (it answers 403, never retried)."""
    with failing_s3_server(EXPIRED_TOKEN) as server:
        use_test_credentials(monkeypatch)
        store = S3ObjectStore(FAIL_BUCKET, ROOT, endpoint_url=server.endpoint, max_attempts=1)
        source = tmp_path / "audio.wav"
        source.write_bytes(b"RIFF" + bytes(1000))
        for call in (
            lambda: store.write_bytes("artifacts/c1/a.json", b"{}", "application/json"),
            lambda: store.upload_file(source, "artifacts/c1/audio.wav", "audio/wav"),
        ):
            with pytest.raises(StorageError):
                call()
        put_bytes, put_file = server.received()
        host = server.endpoint.removeprefix("http://")
        assert (put_bytes.method, put_bytes.path) == (
            "PUT",
            f"/{FAIL_BUCKET}/{ROOT}/artifacts/c1/a.json",
        )
        assert (put_file.method, put_file.path) == (
            "PUT",
            f"/{FAIL_BUCKET}/{ROOT}/artifacts/c1/audio.wav",
        )
        for request in (put_bytes, put_file):
            assert request.headers["host"] == host  # not <bucket>.<host>
            assert _checksum_headers(request.headers) == {}
        assert put_bytes.body == b"{}"

        # Control: boto3's default (when_supported) does send them, so the check can fail.
        import boto3

        default = boto3.session.Session().client("s3", endpoint_url=server.endpoint)
        with pytest.raises(Exception, match="ExpiredToken"):
            default.put_object(Bucket=FAIL_BUCKET, Key="k", Body=b"{}")
        assert _checksum_headers(server.received()[-1].headers) != {}


# ----------------------------------------------------------------------------- failures


def _assert_no_secrets(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)
    assert SECRET not in text
    assert SESSION_TOKEN not in text


Failing = Callable[[S3Failure], tuple[FailingS3, S3ObjectStore]]


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> Iterator[Failing]:
    """Starts a failing server, gives the AWS environment distinctive secrets, and returns
    the server with a store on it (max_attempts=3)."""
    with ExitStack() as stack:

        def start(failure: S3Failure) -> tuple[FailingS3, S3ObjectStore]:
            server = stack.enter_context(failing_s3_server(failure))
            use_test_credentials(
                monkeypatch, access_key=ACCESS_KEY, secret_key=SECRET, session_token=SESSION_TOKEN
            )
            store = S3ObjectStore(FAIL_BUCKET, ROOT, endpoint_url=server.endpoint, max_attempts=3)
            return server, store

        yield start
    _open_cached.cache_clear()


def _operations(store: S3ObjectStore, tmp_path: Path) -> dict[str, Callable[[], Any]]:
    source = tmp_path / "upload.wav"
    source.write_bytes(b"RIFF" + bytes(100))
    return {
        "list": lambda: list(store.list_objects("incoming")),
        "stat": lambda: store.stat("incoming/a.wav"),
        "read": lambda: store.read_bytes("incoming/a.wav"),
        "sha256": lambda: store.sha256("incoming/a.wav"),
        "download": lambda: store.download_to("incoming/a.wav", tmp_path / "out.wav"),
        "write": lambda: store.write_bytes("artifacts/c1/a.json", b"{}"),
        "upload": lambda: store.upload_file(source, "artifacts/c1/audio.wav", "audio/wav"),
    }


def test_slow_down_is_retried_max_attempts_times(failing: Failing, tmp_path: Path) -> None:
    server, store = failing(SLOW_DOWN)
    started = time.perf_counter()
    with pytest.raises(StorageError, match="HTTP 503 SlowDown") as caught:
        store.write_bytes("artifacts/c1/a.json", b"{}")
    elapsed = time.perf_counter() - started
    requests = server.received()
    assert len(requests) == 3  # max_attempts, the first try included
    assert {(r.method, r.path) for r in requests} == {
        ("PUT", f"/{FAIL_BUCKET}/{ROOT}/artifacts/c1/a.json")
    }
    assert type(caught.value) is StorageError
    assert elapsed < 10  # standard mode: two jittered throttling backoffs of at most 1 s and 2 s
    _assert_no_secrets(caught.value)


@pytest.mark.parametrize(
    "operation", ["list", "stat", "read", "sha256", "download", "write", "upload"]
)
def test_server_errors_are_retried_then_storage_error(
    failing: Failing, tmp_path: Path, operation: str
) -> None:
    server, store = failing(INTERNAL_ERROR)
    with pytest.raises(StorageError) as caught:
        _operations(store, tmp_path)[operation]()
    assert type(caught.value) is StorageError
    assert len(server.received()) == 3
    message = str(caught.value)
    assert f"s3://{FAIL_BUCKET}" in message
    assert "HTTP 500" in message
    _assert_no_secrets(caught.value)
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("operation", ["list", "read", "sha256", "download", "write", "upload"])
def test_expired_token_is_not_retried_and_says_so(
    failing: Failing, tmp_path: Path, operation: str
) -> None:
    server, store = failing(EXPIRED_TOKEN)
    with pytest.raises(StorageError, match="credentials have expired") as caught:
        _operations(store, tmp_path)[operation]()
    requests = server.received()
    assert len(requests) == 1  # a retry cannot fix expired credentials
    # The token really went out (so its absence from the message means something) ...
    assert requests[0].headers["x-amz-security-token"] == SESSION_TOKEN
    assert f"Credential={ACCESS_KEY}/" in requests[0].headers["authorization"]
    # ... and neither it nor the secret key comes back in what we report.
    _assert_no_secrets(caught.value)


def test_expired_token_on_a_head_request(failing: Failing, tmp_path: Path) -> None:
    """HEAD responses carry no error body, so only the status is known: still a StorageError."""
    server, store = failing(EXPIRED_TOKEN)
    with pytest.raises(StorageError, match="HTTP 403") as caught:
        store.stat("incoming/a.wav")
    assert not isinstance(caught.value, ObjectNotFound)
    assert [r.method for r in server.received()] == ["HEAD"]
    _assert_no_secrets(caught.value)


@pytest.mark.parametrize("operation", ["list", "read", "write", "upload", "download"])
def test_connection_refused_is_retried_then_storage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, operation: str
) -> None:
    use_test_credentials(
        monkeypatch, access_key=ACCESS_KEY, secret_key=SECRET, session_token=SESSION_TOKEN
    )
    store = S3ObjectStore(FAIL_BUCKET, ROOT, endpoint_url=closed_port_endpoint(), max_attempts=3)
    attempts = _count_calls(store, "before-send.s3")
    with pytest.raises(StorageError, match="failed after retries") as caught:
        _operations(store, tmp_path)[operation]()
    assert type(caught.value) is StorageError
    assert len(attempts) == 3
    assert "Could not connect" in str(caught.value)
    _assert_no_secrets(caught.value)
    _open_cached.cache_clear()
