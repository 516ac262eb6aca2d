"""Real S3 peers on loopback for the S3 store tests.

- `s3_server()`: moto's S3 server (a real HTTP server speaking the S3 REST protocol) on
  127.0.0.1, one per test session; `fresh_bucket()` gives each test its own bucket, sets fake
  AWS credentials in the environment and returns the bucket with a boto3 client for direct
  puts/checks and the `S3Options` that point a store at the server (the endpoint reaches the
  store as a field, never through AWS_ENDPOINT_URL).
- `failing_s3_server()`: a tiny HTTP server that answers every request with one S3 error
  (503 SlowDown, 500 InternalError, 403 ExpiredToken, ...) and records what it received, so
  tests can count retries and inspect the requests' URLs and headers.
- `closed_port_endpoint()`: an endpoint nothing listens on (connection refused).
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

import pytest

from cscoach_pipeline.defs.ingest.storage import S3Options

REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"

# Environment that could redirect boto3 away from the test server or change its behaviour
# (botocore itself reads AWS_ENDPOINT_URL when a store has no endpoint field).
_AWS_OVERRIDES = (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT_URL_S3",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_REQUEST_CHECKSUM_CALCULATION",
    "AWS_RESPONSE_CHECKSUM_VALIDATION",
    "CSCOACH_S3_ADDRESSING_STYLE",
)


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    # moto's request handler logs every request through werkzeug at INFO.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def use_test_credentials(
    monkeypatch: pytest.MonkeyPatch,
    *,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    session_token: str | None = None,
) -> None:
    """Give boto3's credential chain fake keys, isolated from the developer's own AWS config
    and endpoint, and drop stores cached with the previous credentials (callers clear
    `_open_cached` again after the test). The endpoint goes through `S3Options`."""
    from cscoach_pipeline.defs.ingest.storage import _open_cached

    for name in _AWS_OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/cscoach-test-aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/cscoach-test-aws-creds")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    if session_token is not None:
        monkeypatch.setenv("AWS_SESSION_TOKEN", session_token)
    # Stores are cached per URL and options; a cached one would keep its old credentials.
    _open_cached.cache_clear()


def s3_client(endpoint: str, *, max_pool_connections: int = 16) -> Any:
    """A plain boto3 client for setup and checks, independent of the store under test."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(
            s3={"addressing_style": "path"},
            max_pool_connections=max_pool_connections,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


@dataclass
class S3Bucket:
    name: str
    endpoint: str
    client: Any

    def url(self, prefix: str = "") -> str:
        """The CSCOACH_BUCKET_URL for this bucket, e.g. s3://<name>/<prefix>."""
        return f"s3://{self.name}/{prefix}".rstrip("/")

    @property
    def options(self) -> S3Options:
        """What the definitions would build from AWS_ENDPOINT_URL=<this server>."""
        return S3Options(endpoint_url=self.endpoint)

    def object_keys(self) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.name)
            for item in page.get("Contents", [])
        ]


def fresh_bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A new, empty bucket with a unique name on the server at `endpoint`; boto3 signs with
    fake credentials for the rest of the test."""
    use_test_credentials(monkeypatch)
    client = s3_client(endpoint)
    name = f"cscoach-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return S3Bucket(name=name, endpoint=endpoint, client=client)


# --------------------------------------------------------------------------- failing peers


@dataclass(frozen=True)
class S3Failure:
    status: int
    code: str
    message: str


SLOW_DOWN = S3Failure(503, "SlowDown", "Please reduce your request rate.")
INTERNAL_ERROR = S3Failure(500, "InternalError", "We encountered an internal error.")
EXPIRED_TOKEN = S3Failure(403, "ExpiredToken", "The provided token has expired.")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class FailingS3:
    endpoint: str
    failure: S3Failure
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self.requests)


def _error_xml(failure: S3Failure, path: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(failure.code)}</Code><Message>{escape(failure.message)}</Message>"
        f"<Resource>{escape(path)}</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>"
    ).encode()


def _handler(state: FailingS3) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1: answers `Expect: 100-continue` (boto3 uploads) and keeps connections alive.
        protocol_version = "HTTP/1.1"

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _fail(self) -> None:
            body = self._body()
            with state.lock:
                state.requests.append(
                    RecordedRequest(
                        method=self.command,
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                    )
                )
            payload = _error_xml(state.failure, self.path)
            self.send_response(state.failure.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("x-amz-request-id", "4442587FB7D0A2F9")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _fail

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def failing_s3_server(failure: S3Failure) -> Iterator[FailingS3]:
    """An HTTP server on 127.0.0.1 answering every request with `failure` as S3 error XML."""
    state = FailingS3(endpoint="", failure=failure)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    state.endpoint = f"http://{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_endpoint() -> str:
    """An endpoint on loopback that refuses connections (a port just released by us)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
