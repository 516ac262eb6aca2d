"""A small in-memory double of the Supabase Storage REST API for tests.

supabase-py (storage3) talks to it over real HTTP, so everything above the network boundary
(URL building, headers, multipart bodies, error parsing) is the real client code. Use it as a
context manager; ``fake.url`` is the *project* URL (supabase-py appends ``/storage/v1/``)::

    with FakeSupabaseStorage(service_key="k", buckets=("recordings",)) as fake:
        store = SupabaseObjectStore("recordings", url=fake.url, key="k")

Served routes (under ``/storage/v1``), as supabase-py 2.x calls them:

- ``POST /object/list/{bucket}``: one folder level; JSON ``{prefix, limit, offset, sortBy,
  search?}``; files plus folder entries (``id`` null);
- ``POST /object/list-v2/{bucket}``: flat, name-ordered, cursor-paged; JSON ``{prefix, limit,
  cursor?, with_delimiter, sortBy?}`` -> ``{hasNext, nextCursor?, folders, objects}``. With
  ``list_v2=False`` the server is older, and ``list_v2_missing`` says how it answers:
  ``"route"`` Fastify's 404 ``Route POST:... not found``; ``"feature"`` 400
  ``FeatureNotEnabled`` (a tenant not yet migrated); ``"bucket"`` what a server without the
  route does when it matches ``/object/list-v2/{bucket}`` to the upload route
  ``/object/{bucket}/{path}``: ``Bucket not found`` for the bucket named "list-v2";
- ``GET /object/info/{bucket}/{path}`` (also ``/object/info/authenticated/...``);
- ``GET /object/{bucket}/{path}`` (also ``/object/authenticated/...``): the bytes;
- ``POST``/``PUT /object/{bucket}/{path}``: multipart (``cacheControl``, optional
  ``metadata`` JSON, ``file`` with its content type); ``x-upsert: true`` lets POST replace;
- ``DELETE /object/{bucket}`` with ``{"prefixes": [...]}``.

Every request must carry ``apikey`` and ``Authorization: Bearer`` with the service key; like
the real server, errors are HTTP 400 with the real status in the body
(``{"statusCode": "404", "error": "not_found", "message": "Object not found"}``). Injected
faults answer real HTTP 5xx/429 (as a gateway would) or drop the connection unanswered.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import threading
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

ROUTES = ("list", "list-v2", "info", "download", "upload", "update", "remove")
_API = "/storage/v1"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakeObject:
    id: str
    name: str  # full path inside the bucket
    data: bytes
    content_type: str
    created_at: datetime
    updated_at: datetime
    user_metadata: dict[str, Any] | None = None
    cache_control: str = "max-age=3600"

    @property
    def etag(self) -> str:
        return '"' + hashlib.md5(self.data).hexdigest() + '"'

    def system_metadata(self) -> dict[str, Any]:
        return {
            "eTag": self.etag,
            "size": len(self.data),
            "mimetype": self.content_type,
            "cacheControl": self.cache_control,
            "lastModified": _iso(self.updated_at),
            "contentLength": len(self.data),
            "httpStatusCode": 200,
        }

    def row(self, name: str | None = None) -> dict[str, Any]:
        return {
            "name": self.name if name is None else name,
            "id": self.id,
            "updated_at": _iso(self.updated_at),
            "created_at": _iso(self.created_at),
            "last_accessed_at": _iso(self.updated_at),
            "metadata": self.system_metadata(),
        }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as sent, still percent-encoded
    route: str  # one of ROUTES, or "unknown"
    headers: dict[str, str]
    body: bytes = b""
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    kind: Literal["status", "drop"]
    status: int = 503


class FakeSupabaseStorage:
    def __init__(
        self,
        *,
        service_key: str = "service-role-key-for-tests",
        buckets: tuple[str, ...] = ("recordings",),
        list_v2: bool = True,
        list_v2_missing: Literal["route", "feature", "bucket"] = "route",
    ) -> None:
        self.service_key = service_key
        self.list_v2 = list_v2
        self.list_v2_missing = list_v2_missing
        self.default_bucket = buckets[0]
        self.buckets: dict[str, dict[str, FakeObject]] = {name: {} for name in buckets}
        self.requests: list[RecordedRequest] = []
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.url = ""

    # ---------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> FakeSupabaseStorage:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        fake = self

        class Handler(_Handler):
            storage = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            # A short poll interval keeps stop() (and so each test) quick.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-supabase-storage",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections, self._connections = set(self._connections), set()
        for conn in connections:  # keep-alive connections still parked in a handler
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    # ------------------------------------------------------------------------------ objects

    def put(
        self,
        key: str,
        data: bytes,
        metadata: dict[str, Any] | None = None,
        updated_at: datetime | None = None,
        *,
        content_type: str = "application/octet-stream",
        bucket: str | None = None,
    ) -> FakeObject:
        """Stores an object directly (no HTTP), as if uploaded earlier."""
        moment = updated_at or datetime.now(UTC)
        with self._lock:
            objects = self.buckets[bucket or self.default_bucket]
            previous = objects.get(key)
            obj = FakeObject(
                id=previous.id if previous else str(uuid.uuid4()),
                name=key,
                data=data,
                content_type=content_type,
                created_at=previous.created_at if previous else moment,
                updated_at=moment,
                user_metadata=metadata,
            )
            objects[key] = obj
            return obj

    def get(self, key: str, *, bucket: str | None = None) -> FakeObject | None:
        with self._lock:
            return self.buckets[bucket or self.default_bucket].get(key)

    def delete(self, key: str, *, bucket: str | None = None) -> bool:
        with self._lock:
            return self.buckets[bucket or self.default_bucket].pop(key, None) is not None

    def keys(self, *, bucket: str | None = None) -> list[str]:
        with self._lock:
            return sorted(self.buckets[bucket or self.default_bucket])

    # ---------------------------------------------------------------------- requests, faults

    def count(self, route: str | None = None, method: str | None = None) -> int:
        """Requests received, optionally for one route (see ROUTES) and/or method."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (route is None or r.route == route) and (method is None or r.method == method)
            )

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(r.route for r in self.requests)

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def fail_next(self, route: str, times: int = 1, status: int = 503) -> None:
        """The next `times` requests to `route` ("*" for any) answer HTTP `status`."""
        self._queue(route, [_Fault("status", status)] * times)

    def drop_next(self, route: str, times: int = 1) -> None:
        """The next `times` requests to `route` ("*" for any) get their connection closed
        without an answer."""
        self._queue(route, [_Fault("drop")] * times)

    def _queue(self, route: str, faults: list[_Fault]) -> None:
        if route != "*" and route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {ROUTES} or '*'")
        with self._lock:
            self._faults[route].extend(faults)

    def _take_fault(self, route: str) -> _Fault | None:
        with self._lock:
            for name in (route, "*"):
                if self._faults[name]:
                    return self._faults[name].popleft()
        return None


class _Handler(BaseHTTPRequestHandler):
    storage: FakeSupabaseStorage
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects
    # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.storage._lock:
            self.storage._connections.add(self.connection)

    def finish(self) -> None:
        with self.storage._lock:
            self.storage._connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # --------------------------------------------------------------------------- plumbing

    def _handle(self) -> None:
        body = self._read_body()
        raw_path = urlsplit(self.path).path
        route, bucket, key = _route(self.command, raw_path)
        content_type = self.headers.get("Content-Type", "")
        parsed_json: Any = None
        form: dict[str, str] = {}
        file_part: tuple[bytes, str] | None = None
        if body and content_type.startswith("application/json"):
            try:
                parsed_json = json.loads(body)
            except ValueError:
                parsed_json = None
        elif body and content_type.startswith("multipart/form-data"):
            form, file_part = _parse_multipart(body, content_type)
        fake = self.storage
        with fake._lock:
            fake.requests.append(
                RecordedRequest(
                    method=self.command,
                    path=self.path,
                    route=route,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    json=parsed_json,
                    form=form,
                )
            )
        fault = fake._take_fault(route) if route != "unknown" else None
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None:
            if fault.status == 429:  # a gateway's rate limit: not Storage's JSON shape
                self._send(429, {"message": "API rate limit exceeded"})
            else:
                self._send(
                    fault.status,
                    {
                        "statusCode": str(fault.status),
                        "error": "InternalError" if fault.status == 500 else "ServiceUnavailable",
                        "message": f"injected HTTP {fault.status}",
                    },
                )
            return
        v2_missing = route == "list-v2" and not fake.list_v2
        if route == "unknown" or (v2_missing and fake.list_v2_missing == "route"):
            # Fastify's own 404, answered before any auth hook runs.
            path = raw_path[len(_API) :] if raw_path.startswith(_API) else raw_path
            self._send(
                404,
                {
                    "message": f"Route {self.command}:{path} not found",
                    "error": "Not Found",
                    "statusCode": 404,
                },
            )
            return
        if not self._authorized():
            self._error(403, "Unauthorized", "invalid signature")
            return
        if v2_missing and fake.list_v2_missing == "feature":
            self._error(400, "FeatureNotEnabled", "This feature is not available for your tenant")
            return
        if v2_missing:  # "bucket": taken for an upload into the bucket named "list-v2"
            self._error(404, "Bucket not found", "Bucket not found")
            return
        with fake._lock:
            objects = fake.buckets.get(bucket)
            if objects is None:
                if route in ("list", "list-v2", "remove"):
                    objects = {}  # listings only filter by bucket: a missing one lists empty
                else:
                    self._error(404, "Bucket not found", "Bucket not found")
                    return
            if route == "list":
                self._send(200, _list_folder(objects, parsed_json or {}))
            elif route == "list-v2":
                self._send(200, _list_flat(objects, parsed_json or {}))
            elif route == "remove":
                prefixes = (parsed_json or {}).get("prefixes") or []
                removed = [objects.pop(p).row() for p in prefixes if p in objects]
                self._send(200, removed)
            elif route in ("info", "download"):
                obj = objects.get(key)
                if obj is None:
                    self._error(404, "not_found", "Object not found")
                elif route == "info":
                    self._send(200, _info(obj, bucket))
                else:
                    self._send_bytes(obj)
            else:
                self._write(route, bucket, key, objects, file_part, form)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        key = self.storage.service_key
        return (
            self.headers.get("apikey") == key
            and self.headers.get("Authorization") == f"Bearer {key}"
        )

    def _write(
        self,
        route: str,
        bucket: str,
        key: str,
        objects: dict[str, FakeObject],
        file_part: tuple[bytes, str] | None,
        form: dict[str, str],
    ) -> None:
        if file_part is None:
            self._error(400, "InvalidRequest", "No file was provided")
            return
        exists = key in objects
        upsert = (self.headers.get("x-upsert") or "").lower() == "true"
        if route == "upload" and exists and not upsert:
            self._error(409, "Duplicate", "The resource already exists")
            return
        if route == "update" and not exists:
            self._error(404, "not_found", "Object not found")
            return
        metadata = json.loads(form["metadata"]) if form.get("metadata") else None
        data, part_type = file_part
        obj = self.storage.put(key, data, metadata, content_type=part_type, bucket=bucket)
        if form.get("cacheControl"):
            obj.cache_control = f"max-age={form['cacheControl']}"
        self._send(200, {"Id": obj.id, "Key": f"{bucket}/{key}"})

    def _error(self, status: int, error: str, message: str) -> None:
        # The real server: HTTP 400 with the real status in the body (500 stays 500).
        self._send(
            500 if status >= 500 else 400,
            {"statusCode": str(status), "error": error, "message": message},
        )

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_bytes(self, obj: FakeObject) -> None:
        self.send_response(200)
        self.send_header("Content-Type", obj.content_type)
        self.send_header("Content-Length", str(len(obj.data)))
        self.send_header("ETag", obj.etag)
        self.send_header("Cache-Control", obj.cache_control)
        self.end_headers()
        self.wfile.write(obj.data)


def _route(method: str, raw_path: str) -> tuple[str, str, str]:
    """(route, bucket, object key) of a request path."""
    if not raw_path.startswith(_API + "/object/"):
        return "unknown", "", ""
    parts = [unquote(p) for p in raw_path[len(_API + "/object/") :].split("/")]
    if method == "POST" and parts[0] in ("list", "list-v2") and len(parts) == 2:
        return parts[0], parts[1], ""
    if method == "GET" and parts[0] == "info":
        rest = parts[2:] if len(parts) > 2 and parts[1] == "authenticated" else parts[1:]
        if len(rest) >= 2:
            return "info", rest[0], "/".join(rest[1:])
        return "unknown", "", ""
    if method == "DELETE" and len(parts) == 1:
        return "remove", parts[0], ""
    if method == "GET" and parts[0] == "authenticated":
        parts = parts[1:]
    if len(parts) >= 2 and all(parts[1:]):
        bucket, key = parts[0], "/".join(parts[1:])
        if method == "GET":
            return "download", bucket, key
        if method == "POST":
            return "upload", bucket, key
        if method == "PUT":
            return "update", bucket, key
    return "unknown", "", ""


def _parse_multipart(
    body: bytes, content_type: str
) -> tuple[dict[str, str], tuple[bytes, str] | None]:
    """(text fields, (file bytes, file content type)) of a multipart/form-data body."""
    boundary = ""
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    form: dict[str, str] = {}
    file_part: tuple[bytes, str] | None = None
    if not boundary:
        return form, file_part
    for chunk in (b"\r\n" + body).split(b"\r\n--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, _, content = chunk[2:].partition(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        params = dict(
            (k.strip().lower(), v.strip().strip('"'))
            for k, _, v in (p.partition("=") for p in disposition.split(";")[1:])
        )
        if "filename" in params or params.get("name") == "file":
            file_part = (content, headers.get("content-type", "application/octet-stream"))
        elif "name" in params:
            form[params["name"]] = content.decode("utf-8")
    return form, file_part


def _list_folder(objects: dict[str, FakeObject], body: dict[str, Any]) -> list[dict[str, Any]]:
    prefix = str(body.get("prefix") or "")
    if prefix and not prefix.endswith("/"):
        prefix += "/"  # the server treats the prefix as a folder
    limit = int(body.get("limit") or 100)
    offset = int(body.get("offset") or 0)
    search = str(body.get("search") or "").lower()
    sort = body.get("sortBy") or {}
    entries: dict[str, dict[str, Any]] = {}
    for name, obj in objects.items():
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :]
        head, slash, _ = rest.partition("/")
        if search and not head.lower().startswith(search):
            continue
        if slash:
            entries.setdefault(
                head,
                {
                    "name": head,
                    "id": None,
                    "updated_at": None,
                    "created_at": None,
                    "last_accessed_at": None,
                    "metadata": None,
                },
            )
        else:
            entries[head] = obj.row(name=head)
    column = sort.get("column") or "name"
    rows = sorted(entries.values(), key=lambda r: (r.get(column) or "", r["name"]))
    if (sort.get("order") or "asc").lower() == "desc":
        rows.reverse()
    return rows[offset : offset + limit]


def _list_flat(objects: dict[str, FakeObject], body: dict[str, Any]) -> dict[str, Any]:
    prefix = str(body.get("prefix") or "")
    limit = min(int(body.get("limit") or 1000), 1000)
    start_after = ""
    if body.get("cursor"):
        start_after = json.loads(base64.b64decode(body["cursor"]))["startAfter"]
    # (folder?, listed entry, name the next page starts after); names sort as COLLATE "C".
    entries: list[tuple[bool, dict[str, Any], str]] = []
    for name in sorted(n for n in objects if n.startswith(prefix) and n > start_after):
        rest = name[len(prefix) :]
        if body.get("with_delimiter") and "/" in rest:
            folder = prefix + rest.split("/")[0] + "/"
            if entries and entries[-1][0] and entries[-1][1]["name"] == folder:
                continue
            # A folder's keys sort together; the cursor skips past all of them.
            entries.append((True, {"id": None, "name": folder, "key": folder}, folder + "\uffff"))
        else:
            entries.append((False, objects[name].row(), name))
        if len(entries) > limit:  # one more than asked for: there is a next page
            break
    has_next = len(entries) > limit
    page = entries[:limit]
    result: dict[str, Any] = {
        "hasNext": has_next,
        "folders": [entry for is_folder, entry, _ in page if is_folder],
        "objects": [entry for is_folder, entry, _ in page if not is_folder],
    }
    if has_next:
        after = page[-1][2]
        result["nextCursor"] = base64.b64encode(json.dumps({"startAfter": after}).encode()).decode()
        result["nextCursorKey"] = page[-1][1]["name"]
    return result


def _info(obj: FakeObject, bucket: str) -> dict[str, Any]:
    return {
        "id": obj.id,
        "name": obj.name,
        "version": obj.id,
        "bucket_id": bucket,
        "size": len(obj.data),
        "content_type": obj.content_type,
        "cache_control": obj.cache_control,
        "etag": obj.etag,
        "metadata": obj.user_metadata,
        "last_modified": _iso(obj.updated_at),
        "created_at": _iso(obj.created_at),
    }
