"""The bucket resource: where consultations arrive (`incoming/`) and artifacts go (`artifacts/`),
with the options of each storage backend and the limits the bucket sensor works within."""

from __future__ import annotations

import json
from typing import Any

from dagster import Config, ConfigurableResource
from pydantic import Field

from cscoach_pipeline.defs.ingest.storage import (
    ObjectStore,
    S3Options,
    SupabaseOptions,
    open_object_store,
)
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

    # One options field per backend that has options; the registry gives each backend its own.
    s3: S3Options = Field(default=S3Options(), description="endpoint and addressing, for s3://")
    supabase: SupabaseOptions = Field(
        default=SupabaseOptions(), description="project URL and service-role key, for supabase://"
    )

    # What the bucket sensor works within.
    settle_seconds: float = Field(
        default=10.0, description="a new file is admitted once unchanged this long"
    )
    settle_recheck_s: float = Field(
        default=1.0,
        description="a younger file unchanged after this many seconds (same size and mtime) "
        "is admitted in the same tick; 0 = wait for settle_seconds (folder store only)",
    )
    text_batch_size: int = Field(
        default=25, description="new text consultations of one tick run up to this many per run"
    )
    audio_batch_size: int = Field(
        default=4,
        description="a burst of new recordings (more than transcriptions_at_once) shares "
        "runs, up to this many per run; 1 = one run each",
    )
    transcriptions_at_once: int = Field(
        default=0, description="recordings transcribed at once (0 = unknown: no floor)"
    )
    max_runs_per_tick: int = Field(
        default=200, description="runs one sensor tick requests at most; the rest wait a tick"
    )
    tick_budget_s: float = Field(
        default=20.0, description="seconds of hashing/recording work per sensor tick"
    )
    list_budget_s: float = Field(
        default=30.0,
        description="seconds of listing per tick; a longer listing resumes on the next tick",
    )

    def store(self) -> ObjectStore:
        return open_object_store(self.url, *self.backend_options())

    def backend_options(self) -> tuple[Config, ...]:
        """Every backend options field, so a new backend's field needs no line here."""
        values = (getattr(self, name) for name in type(self).model_fields)
        return tuple(value for value in values if isinstance(value, Config))

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
