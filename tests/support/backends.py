"""The three bucket backends as tests see them: how to put an object (with metadata) into the
store behind `CSCOACH_BUCKET_URL`, read it back and list it, without going through the code
under test, and the `BucketResource` fields that reach it (`resource_kwargs`: the backend's
options). Local folder, a real S3 server (moto) and the Supabase Storage HTTP double."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from cscoach_pipeline.defs.ingest.storage import SupabaseOptions
from tests.support.fake_supabase_storage import FakeSupabaseStorage
from tests.support.s3_server import S3Bucket


class BucketBackend(ABC):
    name: str
    url: str

    @property
    def resource_kwargs(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> Any: ...

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def keys(self) -> list[str]: ...

    def digest(self, prefix: str) -> dict[str, str]:
        return {
            key: hashlib.sha256(self.get(key)).hexdigest()
            for key in self.keys()
            if key.startswith(prefix)
        }


class LocalBackend(BucketBackend):
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> Path:
        if metadata:
            raise ValueError("a folder has no object metadata: use a .meta.json sidecar")
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def delete(self, key: str) -> None:
        (self.root / key).unlink()

    def keys(self) -> list[str]:
        return sorted(
            p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()
        )


class S3Backend(BucketBackend):
    name = "s3"

    def __init__(self, bucket: S3Bucket, prefix: str = "cc") -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.url = bucket.url(prefix)

    @property
    def resource_kwargs(self) -> dict[str, Any]:
        return {"s3": self.bucket.options}

    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> str:
        self.bucket.client.put_object(
            Bucket=self.bucket.name, Key=f"{self.prefix}/{key}", Body=data, Metadata=metadata or {}
        )
        return key

    def get(self, key: str) -> bytes:
        response = self.bucket.client.get_object(
            Bucket=self.bucket.name, Key=f"{self.prefix}/{key}"
        )
        return response["Body"].read()

    def delete(self, key: str) -> None:
        self.bucket.client.delete_object(Bucket=self.bucket.name, Key=f"{self.prefix}/{key}")

    def keys(self) -> list[str]:
        cut = len(self.prefix) + 1
        return sorted(k[cut:] for k in self.bucket.object_keys() if k.startswith(self.prefix + "/"))


class SupabaseBackend(BucketBackend):
    name = "supabase"

    def __init__(self, fake: FakeSupabaseStorage, prefix: str = "tenant-a") -> None:
        self.fake = fake
        self.prefix = prefix
        self.url = f"supabase://{fake.default_bucket}/{prefix}"

    @property
    def resource_kwargs(self) -> dict[str, Any]:
        return {"supabase": SupabaseOptions(url=self.fake.url, key=self.fake.service_key)}

    def put(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> str:
        self.fake.put(f"{self.prefix}/{key}", data, metadata=metadata)
        return key

    def get(self, key: str) -> bytes:
        obj = self.fake.get(f"{self.prefix}/{key}")
        if obj is None:
            raise KeyError(key)
        return obj.data

    def delete(self, key: str) -> None:
        self.fake.delete(f"{self.prefix}/{key}")

    def keys(self) -> list[str]:
        cut = len(self.prefix) + 1
        stored = self.fake.keys()  # the fake store's listing, not a dict
        return [k[cut:] for k in stored if k.startswith(self.prefix + "/")]
