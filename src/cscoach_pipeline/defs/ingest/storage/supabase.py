"""Supabase Storage buckets (`supabase://bucket/prefix`) through supabase-py's Storage client.

The project URL and the service-role key are `SupabaseOptions` fields (the definitions fill
them from SUPABASE_URL and EnvVar("SUPABASE_SERVICE_ROLE_KEY")); the key is never put into a
repr, a message or a log line. httpx, storage3 and supabase are imported where they are used:
the registry imports this module whenever the storage package loads.

Supabase Storage answers most errors as HTTP 400 with the real status in the JSON body
(`{"statusCode": "404", "error": "not_found", "message": "Object not found"}`); gateways in
front of it answer with real HTTP statuses (429, 502, 503). storage3 turns both into
`StorageApiError(message, code, status)`, so both the body status and the HTTP status (kept in
the exception chain) are looked at.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from dagster import Config
from pydantic import Field, ValidationError

from cscoach_pipeline.defs.ingest.storage.base import (
    Backend,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    StoredObject,
    bucket_and_prefix,
    change_token,
)
from cscoach_pipeline.resilience import backoff_delays

if TYPE_CHECKING:
    from storage3.exceptions import StorageApiError

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_PAGE = 1000
# Zero-byte files the Supabase dashboard creates to keep an empty folder visible.
_PLACEHOLDER = ".emptyFolderPlaceholder"
_NOT_FOUND_CODES = {"not_found", "nosuchkey", "notfound"}
_AUTH_CODES = {"invalidjwt", "unauthorized", "accessdenied", "invalid_jwt"}
_TRANSIENT_CODES = {"slowdown", "databasetimeout", "serviceunavailable"}
_BUCKET_MISSING_CODES = {"nosuchbucket", "bucket not found"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CREDENTIAL_HINT = (
    "Supabase Storage rejected the credentials; check SUPABASE_SERVICE_ROLE_KEY (it must be the "
    "service-role key of the project at SUPABASE_URL)"
)


class SupabaseOptions(Config):
    """Which Supabase project holds a supabase:// bucket, and the key to it."""

    url: str | None = Field(
        default=None, description="the project URL, https://<ref>.supabase.co (SUPABASE_URL)"
    )
    # repr=False: the resolved key must not show in a repr of the options or the resource.
    key: str | None = Field(
        default=None,
        repr=False,
        description="the service-role key: pass EnvVar('SUPABASE_SERVICE_ROLE_KEY') so Dagster "
        "never shows or stores its value",
    )


class _RetryableError(Exception):
    """Internal: one attempt failed in a way another attempt may fix."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SupabaseObjectStore(ObjectStore):
    # Uploads (resumable ones included) appear in a listing only once complete.
    listed_objects_are_complete = True

    def __init__(
        self,
        bucket: str,
        root_prefix: str = "",
        *,
        url: str,
        key: str,
        max_attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        timeout_s: float = 60.0,
    ) -> None:
        import httpx
        from supabase import ClientOptions, create_client

        if not url or not key:
            raise ValueError(
                "a supabase:// bucket needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"
            )
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"SUPABASE_URL must be the project URL, e.g. https://<ref>.supabase.co, got {url!r}"
            )
        self.bucket = bucket
        self.root = root_prefix.strip("/")
        self.url = f"supabase://{bucket}/{self.root}".rstrip("/")
        self.max_attempts = max(1, max_attempts)
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._rng = random.Random()
        # Only to scrub it from server messages; never formatted anywhere.
        self._secret = key
        # None until the first listing tells whether the server has list-v2 (newer Storage).
        self._list_v2: bool | None = None
        # Our own httpx client: explicit timeouts (per read, so big downloads still work) and
        # one connection pool per store.
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            follow_redirects=True,
        )
        client = create_client(url.rstrip("/"), key, ClientOptions(httpx_client=self._http))
        self._files = client.storage.from_(bucket)

    def close(self) -> None:
        """Closes the connection pool. Stores from `open_object_store` live for the process
        and are never closed; this is for stores made directly (tests, scripts)."""
        self._http.close()

    # ------------------------------------------------------------------------------ keys

    def _key(self, key: str) -> str:
        parts = key.split("/")
        if key.startswith("/") or "." in parts or ".." in parts:
            raise StorageError(f"key {key!r} points outside the bucket prefix")
        return f"{self.root}/{key}" if self.root else key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.root) + 1 :] if self.root else full_key

    @staticmethod
    def _path_arg(full_key: str) -> str:
        # storage3 percent-decodes object paths before re-encoding them; escape '%' so a key
        # such as 'a%41.wav' reaches the server unchanged.
        return full_key.replace("%", "%25")

    # ------------------------------------------------------------------------- errors, retry

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _where(self, key: str | None) -> str:
        full = self._key(key) if key is not None else self.root
        return f"supabase://{self.bucket}/{full}".rstrip("/")

    def _call(self, operation: str, key: str | None, fn: Callable[[], _T]) -> _T:
        """Runs one storage3 call, retrying 5xx, 429 and connection failures with exponential
        backoff and jitter, and maps everything else to ObjectNotFound / StorageError."""
        where = self._where(key)
        delays: list[float] = []
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._attempt(operation, key, where, fn)
            except _RetryableError as exc:
                if attempt >= self.max_attempts:
                    raise StorageError(
                        f"Supabase Storage {operation} of {where} failed after {attempt} "
                        f"attempt(s): {exc.detail}"
                    ) from None
                if not delays:
                    # Drawn at the first failure only: nearly every call succeeds at once.
                    delays = backoff_delays(
                        self.max_attempts - 1, self.backoff_base_s, self.backoff_max_s, self._rng
                    )
                time.sleep(delays[attempt - 1])
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, operation: str, key: str | None, where: str, fn: Callable[[], _T]) -> _T:
        import httpx
        from storage3.exceptions import StorageApiError

        try:
            return fn()
        except StorageApiError as exc:
            self._raise_mapped(operation, key, where, exc)
        except httpx.TransportError as exc:
            # Refused/reset/dropped connections and timeouts: worth another attempt.
            raise _RetryableError(self._redact(f"{type(exc).__name__}: {exc}")) from None
        except httpx.HTTPError as exc:
            raise StorageError(
                f"Supabase Storage {operation} of {where} failed: "
                + self._redact(f"{type(exc).__name__}: {exc}")
            ) from None
        except (ValidationError, ValueError) as exc:
            # A 200 answer that is not what Storage sends (wrong SUPABASE_URL, a proxy page).
            raise StorageError(
                f"Supabase Storage {operation} of {where} got an unexpected answer "
                f"(is SUPABASE_URL the project URL?): {type(exc).__name__}"
            ) from None

    def _raise_mapped(
        self, operation: str, key: str | None, where: str, exc: StorageApiError
    ) -> NoReturn:
        body_status, http_status = _statuses(exc)
        statuses = {s for s in (body_status, http_status) if s is not None}
        code = str(exc.code or "")
        message = self._redact(str(exc.message or ""))
        detail = f"HTTP {body_status or http_status} {code}: {message}".strip().rstrip(":")
        lowered_code, lowered_message = code.lower(), message.lower()
        if lowered_code in _AUTH_CODES or statuses & {401, 403} or "jwt" in lowered_message:
            raise StorageError(
                f"Supabase Storage {operation} of {where} failed: {_CREDENTIAL_HINT} ({detail})"
            ) from None
        if lowered_code in _BUCKET_MISSING_CODES or lowered_message == "bucket not found":
            raise StorageError(
                f"Supabase Storage {operation} of {where} failed: the bucket {self.bucket!r} "
                f"does not exist in this project (check CSCOACH_BUCKET_URL and SUPABASE_URL)"
            ) from None
        if _is_route_missing(exc, statuses):
            raise StorageError(
                f"Supabase Storage {operation} of {where} failed: the Storage endpoint was not "
                f"found; SUPABASE_URL must be the project URL, without /storage/v1 ({detail})"
            ) from None
        not_found = (
            lowered_code in _NOT_FOUND_CODES
            or lowered_message == "object not found"
            or 404 in statuses
        )
        if not_found and key is not None:
            raise ObjectNotFound(f"object {key!r} no longer exists in the bucket") from None
        transient = lowered_code in _TRANSIENT_CODES or any(s >= 500 or s == 429 for s in statuses)
        if transient:
            raise _RetryableError(detail) from None
        raise StorageError(f"Supabase Storage {operation} of {where} failed: {detail}") from None

    # ------------------------------------------------------------------------------ listing

    def list_objects(self, prefix: str, start_after: str | None = None) -> Iterator[StoredObject]:
        # Supabase's list-v2 cursor is opaque, so resuming filters client-side.
        for obj in self._list_all(prefix):
            if start_after is None or obj.key > start_after:
                yield obj

    def _list_all(self, prefix: str) -> Iterator[StoredObject]:
        # Like S3: a plain key prefix ('incoming/' lists that folder, 'incoming/a' also
        # matches 'incoming/ab.wav'), relative to the root prefix.
        if prefix.startswith("/") or ".." in prefix.split("/"):
            raise StorageError(f"prefix {prefix!r} points outside the bucket prefix")
        full_prefix = f"{self.root}/{prefix}" if self.root else prefix
        if self._list_v2 is not False:
            yield from self._list_flat(full_prefix)
            if self._list_v2:
                return
        folder, _, name_start = full_prefix.rpartition("/")
        yield from self._list_folder(folder, name_start)

    def _list_flat(self, full_prefix: str) -> Iterator[StoredObject]:
        """list-v2: one flat, name-ordered, cursor-paged listing of everything under a prefix.
        Sets `self._list_v2 = False` (and yields nothing) when the server lacks it."""
        cursor: str | None = None
        while True:
            options: dict[str, Any] = {
                "prefix": full_prefix,
                "limit": _PAGE,
                "with_delimiter": False,
            }
            if cursor is not None:
                options["cursor"] = cursor
            try:
                page = self._call("list", None, lambda options=options: self._list_v2_page(options))
            except _ListV2Unsupported:
                # Decided once per store: later listings go straight to the folder walk.
                self._list_v2 = False
                _log.warning(
                    "Supabase Storage at %s has no list-v2 endpoint; listing folder by folder",
                    self._where(None),
                )
                return
            self._list_v2 = True
            for item in page.objects:
                obj = self._stored(
                    item.name, item.metadata, item.updated_at, getattr(item, "created_at", None)
                )
                if obj is not None:
                    yield obj
            if not page.hasNext:
                return
            if not page.nextCursor or page.nextCursor == cursor:
                raise StorageError(
                    f"Supabase Storage list of {self._where(None)} failed: the server said more "
                    "objects follow but gave no new cursor"
                )
            cursor = page.nextCursor

    def _list_v2_page(self, options: dict[str, Any]) -> Any:
        from storage3.exceptions import StorageApiError

        try:
            return self._files.list_v2(options)  # type: ignore[arg-type]
        except StorageApiError as exc:
            if self._list_v2 is None and _list_v2_unsupported(exc):
                raise _ListV2Unsupported from None
            raise

    def _list_folder(self, folder: str, name_start: str = "") -> Iterator[StoredObject]:
        """Older Storage: one folder level per call (offset paging), recursing into folders."""
        offset = 0
        while True:
            options = {
                "limit": _PAGE,
                "offset": offset,
                "sortBy": {"column": "name", "order": "asc"},
            }
            entries = self._call(
                "list",
                None,
                lambda options=options: self._files.list(folder, options),  # type: ignore[arg-type]
            )
            for entry in entries:
                name = str(entry.get("name") or "")
                if not name or not name.startswith(name_start):
                    continue
                path = f"{folder}/{name}" if folder else name
                if entry.get("id") is None:
                    yield from self._list_folder(path)
                    continue
                obj = self._stored(
                    path, entry.get("metadata"), entry.get("updated_at"), entry.get("created_at")
                )
                if obj is not None:
                    yield obj
            if len(entries) < _PAGE:
                return
            offset += len(entries)

    def _stored(
        self, full_key: str, meta: dict[str, Any] | None, updated_at: Any, created_at: Any
    ) -> StoredObject | None:
        if full_key.rsplit("/", 1)[-1] == _PLACEHOLDER or full_key.endswith("/"):
            return None
        if self.root and not full_key.startswith(self.root + "/"):
            return None
        if meta is None:
            return None  # an upload still in progress: no size or ETag yet
        size = int(meta.get("size") or meta.get("contentLength") or 0)
        etag = str(meta.get("eTag") or meta.get("etag") or "").strip('"') or None
        modified = (
            _parse_time(updated_at)
            or _parse_time(meta.get("lastModified"))
            or _parse_time(created_at)
            or _EPOCH
        )
        return StoredObject(
            key=self._relative(full_key),
            size=size,
            modified=modified,
            version_token=change_token(size, etag, modified.isoformat()),
            etag=etag,
        )

    # ------------------------------------------------------------------------ single objects

    def stat(self, key: str) -> StoredObject:
        full = self._key(key)
        info = self._call("stat", key, lambda: self._files.info(self._path_arg(full)))
        if not isinstance(info, dict) or info.get("size") is None:
            raise StorageError(
                f"Supabase Storage stat of {self._where(key)} got an answer without a size"
            )
        size = int(info["size"])
        etag = str(info.get("etag") or "").strip('"') or None
        modified = (
            _parse_time(info.get("last_modified"))
            or _parse_time(info.get("updated_at"))
            or _parse_time(info.get("created_at"))
            or _EPOCH
        )
        user = info.get("metadata") or {}
        return StoredObject(
            key=key,
            size=size,
            modified=modified,
            version_token=change_token(size, etag, modified.isoformat()),
            metadata={
                str(k).lower(): v if isinstance(v, str) else _json(v) for k, v in user.items()
            },
            etag=etag,
        )

    def read_bytes(self, key: str) -> bytes:
        full = self._key(key)
        return self._call("download", key, lambda: self._files.download(self._path_arg(full)))

    def download_to(self, key: str, destination: Path) -> None:
        # The whole object is received before the file is written: a failed download never
        # leaves a truncated file behind.
        destination.write_bytes(self.read_bytes(key))

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._upload("write", key, data, content_type)

    def upload_file(self, source: Path, key: str, content_type: str | None = None) -> None:
        # A Path (not an open handle): storage3 opens it afresh on every attempt.
        self._upload("upload", key, source, content_type)

    def _upload(
        self, operation: str, key: str, body: bytes | Path, content_type: str | None
    ) -> None:
        full = self._key(key)
        options = {
            "content-type": content_type
            or mimetypes.guess_type(full)[0]
            or "application/octet-stream",
            # Upsert: artifacts are rewritten on re-runs, and a retried upload stays idempotent.
            "x-upsert": "true",
        }
        self._call(
            operation,
            key,
            lambda: self._files.upload(self._path_arg(full), body, options),  # type: ignore[arg-type]
        )

    def locate(self, key: str) -> str:
        return f"supabase://{self.bucket}/{self._key(key)}"


class _ListV2Unsupported(Exception):
    pass


def _statuses(exc: StorageApiError) -> tuple[int | None, int | None]:
    """(status in the JSON body, real HTTP status) of a storage3 error."""
    import httpx

    body = _as_int(exc.status)
    http: int | None = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, httpx.HTTPStatusError):
            http = current.response.status_code
            break
        current = current.__cause__ or current.__context__
    return body, http


def _is_route_missing(exc: StorageApiError, statuses: set[int]) -> bool:
    # Fastify's unknown-route answer: 404 {"message": "Route POST:/... not found", ...}.
    message = str(exc.message or "").lower()
    return bool(statuses & {404, 405}) and message.startswith("route ") and "not found" in message


def _list_v2_unsupported(exc: StorageApiError) -> bool:
    """True when the server does not know list-v2 (older Storage, or a tenant not migrated).

    list-v2 answers a missing prefix, and even a missing bucket, with an empty listing, so a
    404 or 405 can only mean the route is missing. A server without the route matches
    `/object/list-v2/{bucket}` to the upload route `/object/{bucket}/{path}` instead and
    answers "Bucket not found" for the bucket named "list-v2". Credential and server errors
    are never taken for "unsupported"."""
    statuses = {s for s in _statuses(exc) if s is not None}
    code = str(exc.code or "").lower()
    message = str(exc.message or "").lower()
    if statuses & {401, 403} or code in _AUTH_CODES:
        return False
    if code == "featurenotenabled" or "not available for your tenant" in message:
        return True
    if code in _BUCKET_MISSING_CODES or message == "bucket not found":
        return True
    return bool(statuses & {404, 405})


def _as_int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def open_supabase(url: str, options: SupabaseOptions) -> SupabaseObjectStore:
    """The store a `supabase://bucket/prefix` URL names, in the options' project."""
    bucket, prefix = bucket_and_prefix(url)
    # The store itself refuses missing credentials and a URL that is not the project URL.
    return SupabaseObjectStore(bucket, prefix, url=options.url or "", key=options.key or "")


BACKEND = Backend(usage="supabase://bucket/prefix", options=SupabaseOptions, open=open_supabase)
