"""Amazon S3 and S3-compatible stores (MinIO, Cloudflare R2, Supabase's S3 endpoint) via boto3.

The endpoint and the addressing style are `S3Options` fields (the definitions fill them from
AWS_ENDPOINT_URL and CSCOACH_S3_ADDRESSING_STYLE). Credentials and region come from boto3's own
chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, profiles,
instance roles), so no secret ever passes through Dagster config or logs. boto3 is imported
where it is used: the registry imports this module whenever the storage package loads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dagster import Config, EnvVar
from pydantic import Field, field_validator

from cscoach_pipeline.defs.ingest.storage.base import (
    Backend,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    StoredObject,
    bucket_and_prefix,
    change_token,
)

_CHUNK = 1024 * 1024
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
# Codes a retry cannot fix: say what to do instead of retrying.
_CREDENTIAL_CODES = {
    "ExpiredToken": "the AWS credentials have expired; refresh AWS_SESSION_TOKEN or the profile",
    "ExpiredTokenException": "the AWS credentials have expired; refresh them",
    "InvalidAccessKeyId": "the AWS access key is not known to this S3 endpoint",
    "SignatureDoesNotMatch": "the AWS secret key does not match the access key",
    "AccessDenied": "access denied: the credentials lack permission for this bucket/prefix",
    "NoSuchBucket": "the bucket does not exist (check CSCOACH_BUCKET_URL and AWS_ENDPOINT_URL)",
}


ADDRESSING_STYLES = ("auto", "path", "virtual")


class S3Options(Config):
    """Where an s3:// bucket's server is and how to address it."""

    endpoint_url: str | None = Field(
        default=None,
        description="an S3-compatible server (MinIO, R2, Supabase's S3), e.g. "
        "http://127.0.0.1:9000; empty for AWS itself (AWS_ENDPOINT_URL)",
    )
    addressing_style: str | None = Field(
        default=None,
        description="auto, path or virtual; empty means path with a custom endpoint, else auto "
        "(CSCOACH_S3_ADDRESSING_STYLE)",
    )

    @field_validator("endpoint_url")
    @classmethod
    def _empty_endpoint_is_aws(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("addressing_style")
    @classmethod
    def _known_style(cls, value: str | None) -> str | None:
        # An EnvVar is still its name here; Dagster validates again with the value at run time.
        if not value or isinstance(value, EnvVar) or value in ADDRESSING_STYLES:
            return value or None
        raise ValueError(
            f"CSCOACH_S3_ADDRESSING_STYLE must be auto, path or virtual, got {value!r}"
        )


class S3ObjectStore(ObjectStore):
    # Uploads (multipart ones included) appear in a listing only once complete.
    listed_objects_are_complete = True

    def __init__(
        self,
        bucket: str,
        root_prefix: str = "",
        *,
        endpoint_url: str | None = None,
        addressing_style: str | None = None,
        max_attempts: int = 5,
        client: Any | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.root = root_prefix.strip("/")
        self.url = f"s3://{bucket}/{self.root}".rstrip("/")
        endpoint_url = endpoint_url or None
        # Custom endpoints (MinIO, R2, Supabase, local servers) expect path-style URLs.
        style = addressing_style or ("path" if endpoint_url else "auto")
        config = BotoConfig(
            s3={"addressing_style": style},
            # Newer boto3 adds CRC checksums to every request by default, which several
            # S3-compatible servers reject; only send them when an operation requires it.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # Standard mode retries throttling (SlowDown, 503), 5xx and connection errors with
            # exponential backoff and jitter. `total_max_attempts` counts the first request,
            # like AWS_MAX_ATTEMPTS; botocore's `max_attempts` key would add one more.
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        )
        # A session of its own: boto3's module-level default session resolves credentials once
        # per process and caches them, so a store opened after the environment changed (a
        # refreshed AWS_SESSION_TOKEN, other keys) would still sign with the first ones.
        self._client = client or boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, config=config
        )

    def _key(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"key {key!r} points outside the bucket prefix")
        return f"{self.root}/{key}" if self.root else key

    def _relative(self, full_key: str) -> str:
        return full_key[len(self.root) + 1 :] if self.root else full_key

    def _call(self, operation: str, key: str | None, fn: Any, **kwargs: Any) -> Any:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            raise self._storage_error(operation, key, exc) from None

    def _storage_error(self, operation: str, key: str | None, exc: Exception) -> StorageError:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import ClientError

        if isinstance(exc, Boto3Error):
            # boto3's transfer manager (upload_file, download_file) re-raises the ClientError
            # as S3UploadFailedError, and exhausted download retries as RetriesExceededError:
            # classify the underlying botocore error.
            inner = getattr(exc, "last_exception", None) or exc.__cause__ or exc.__context__
            if isinstance(inner, Exception) and not isinstance(inner, Boto3Error):
                exc = inner
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _NOT_FOUND and key is not None:
                return ObjectNotFound(f"object {key!r} no longer exists in the bucket")
            hint = _CREDENTIAL_CODES.get(code)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return StorageError(
                f"S3 {operation} on s3://{self.bucket}/{self._key(key or '')} failed: "
                + (hint or f"HTTP {status} {code}: {error.get('Message', '')}".strip())
            )
        # Connection refused, timeouts, DNS: botocore already retried with backoff.
        return StorageError(
            f"S3 {operation} on s3://{self.bucket} failed after retries: "
            f"{type(exc).__name__}: {exc}"
        )

    def list_objects(self, prefix: str, start_after: str | None = None) -> Iterator[StoredObject]:
        # The prefix names a folder, as in the local store: "incoming" must not also list
        # "incoming-archive/..." or "incoming.txt".
        folder = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        paginator = self._client.get_paginator("list_objects_v2")
        extra = {"StartAfter": self._key(start_after)} if start_after else {}
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self._key(folder),
            PaginationConfig={"PageSize": 1000},
            **extra,
        )
        iterator = iter(pages)
        while True:
            page = self._call("list", None, lambda: next(iterator, None))
            if page is None:
                return
            for item in page.get("Contents", []):
                if item["Key"].endswith("/"):
                    continue  # folder placeholder objects made by consoles
                etag = str(item.get("ETag", "")).strip('"')
                yield StoredObject(
                    key=self._relative(item["Key"]),
                    size=int(item["Size"]),
                    modified=item["LastModified"],
                    version_token=change_token(
                        int(item["Size"]), etag, item["LastModified"].isoformat()
                    ),
                    etag=etag or None,
                )

    def stat(self, key: str) -> StoredObject:
        head = self._call(
            "head", key, self._client.head_object, Bucket=self.bucket, Key=self._key(key)
        )
        etag = str(head.get("ETag", "")).strip('"')
        return StoredObject(
            key=key,
            size=int(head["ContentLength"]),
            modified=head["LastModified"],
            version_token=change_token(
                int(head["ContentLength"]), etag, head["LastModified"].isoformat()
            ),
            metadata={k.lower(): v for k, v in head.get("Metadata", {}).items()},
            etag=etag or None,
        )

    def read_bytes(self, key: str) -> bytes:
        response = self._call(
            "get", key, self._client.get_object, Bucket=self.bucket, Key=self._key(key)
        )
        return self._call("get", key, response["Body"].read)

    def download_to(self, key: str, destination: Path) -> None:
        self._call(
            "download",
            key,
            self._client.download_file,
            Bucket=self.bucket,
            Key=self._key(key),
            Filename=str(destination),
        )

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        self._call(
            "put",
            key,
            self._client.put_object,
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            **extra,
        )

    def upload_file(self, source: Path, key: str, content_type: str | None = None) -> None:
        self._call(
            "upload",
            key,
            self._client.upload_file,
            Filename=str(source),
            Bucket=self.bucket,
            Key=self._key(key),
            ExtraArgs={"ContentType": content_type} if content_type else None,
        )

    def locate(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def sha256(self, key: str) -> str:
        def stream() -> str:
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            digest = hashlib.sha256()
            for chunk in response["Body"].iter_chunks(chunk_size=_CHUNK):
                digest.update(chunk)
            return digest.hexdigest()

        return self._call("get", key, stream)


def open_s3(url: str, options: S3Options) -> S3ObjectStore:
    """The store an `s3://bucket/prefix` URL names, on the options' endpoint."""
    bucket, prefix = bucket_and_prefix(url)
    return S3ObjectStore(
        bucket,
        prefix,
        endpoint_url=options.endpoint_url,
        addressing_style=options.addressing_style,
    )


BACKEND = Backend(usage="s3://bucket/prefix", options=S3Options, open=open_s3)
