"""The bucket resource: where consultations arrive (`incoming/`) and artifacts go (`artifacts/`)."""

from __future__ import annotations

import json
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from cscoach_pipeline.defs.ingest.storage import ObjectStore, open_object_store
from cscoach_pipeline.defs.speech.text_import import (
    DEFAULT_MAX_CHAT_CHARS,
    DEFAULT_MAX_CHAT_SEGMENTS,
)


class BucketResource(ConfigurableResource):
    url: str = Field(description="file:///abs/path, s3://bucket/prefix or supabase://bucket/prefix")
    incoming_prefix: str = "incoming/"
    artifacts_prefix: str = "artifacts/"
    max_file_bytes: int = Field(default=2 * 1024**3, description="larger originals are failed")
    max_chat_segments: int = Field(
        default=DEFAULT_MAX_CHAT_SEGMENTS, description="chats with more messages are failed"
    )
    max_chat_chars: int = Field(
        default=DEFAULT_MAX_CHAT_CHARS, description="longer chats (characters) are failed"
    )
    key_pattern: str = Field(
        default="", description="folders naming fields, e.g. incoming/{team}/{agent_id}/"
    )
    supabase_url: str | None = Field(default=None, description="SUPABASE_URL, for supabase://")
    supabase_key: str | None = Field(
        default=None, description="from EnvVar('SUPABASE_SERVICE_ROLE_KEY'), for supabase://"
    )

    def store(self) -> ObjectStore:
        return open_object_store(
            self.url, supabase_url=self.supabase_url, supabase_key=self.supabase_key
        )

    def artifacts(self, consultation_id: str) -> ConsultationArtifacts:
        return ConsultationArtifacts(self.store(), self.artifacts_prefix, consultation_id)


class ConsultationArtifacts:
    """Derived files of one consultation, under `<artifacts_prefix><consultation_id>/`.

    `private/` holds what must never reach BI users (the unredacted transcript)."""

    def __init__(self, store: ObjectStore, artifacts_prefix: str, consultation_id: str) -> None:
        self.store = store
        self.prefix = f"{artifacts_prefix.rstrip('/')}/{consultation_id}/"

    def key(self, name: str) -> str:
        return self.prefix + name

    def write_json(self, name: str, payload: Any) -> str:
        key = self.key(name)
        data = json.dumps(payload, ensure_ascii=False, indent=2, default=str).encode("utf-8")
        self.store.write_bytes(key, data, "application/json")
        return key

    def read_json(self, name: str) -> Any:
        return json.loads(self.store.read_bytes(self.key(name)).decode("utf-8"))

    def write_text(self, name: str, text: str, content_type: str = "text/markdown") -> str:
        key = self.key(name)
        self.store.write_bytes(key, text.encode("utf-8"), content_type)
        return key

    def locate(self, name: str) -> str:
        return self.store.locate(self.key(name))
