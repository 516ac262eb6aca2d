"""Who and what a consultation is about (agent, team, customer, direction, time), gathered from
a sidecar `<file>.meta.json`, the object's own metadata and the key's folder pattern, so BI can
group scores by agent and team."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

CONTEXT_FIELDS = (
    "agent_id",
    "agent_name",
    "team",
    "channel",
    "customer_id",
    "call_direction",
    "recorded_at",
)
# Common spellings in exports from contact-centre platforms.
ALIASES = {
    "agent": "agent_id",
    "agentid": "agent_id",
    "agent_name": "agent_name",
    "agentname": "agent_name",
    "team_name": "team",
    "group": "team",
    "queue": "team",
    "customer": "customer_id",
    "customerid": "customer_id",
    "direction": "call_direction",
    "calldirection": "call_direction",
    "recorded": "recorded_at",
    "recordedat": "recorded_at",
    "start_time": "recorded_at",
    "started_at": "recorded_at",
    "media": "channel",
    "medium": "channel",
}
_DIRECTIONS = {"in": "inbound", "inbound": "inbound", "out": "outbound", "outbound": "outbound"}


class ConsultationContext(BaseModel):
    model_config = ConfigDict(extra="ignore")

    agent_id: str | None = None
    agent_name: str | None = None
    team: str | None = None
    channel: str | None = None
    customer_id: str | None = None
    call_direction: str | None = None
    recorded_at: datetime | None = None

    @field_validator("call_direction")
    @classmethod
    def _direction(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return _DIRECTIONS.get(value.strip().lower(), value.strip().lower())

    @field_validator("recorded_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # Stored as UTC everywhere: SQLite keeps wall-clock time and drops the offset.
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("agent_id", "agent_name", "team", "channel", "customer_id", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        if value is None or str(value).strip() == "":
            return None
        return str(value).strip()


def normalise_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Lower-case keys, '-' and ' ' to '_', drop S3's x-amz-meta- prefix, map aliases."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).lower().removeprefix("x-amz-meta-").replace("-", "_").replace(" ", "_")
        name = ALIASES.get(name, ALIASES.get(name.replace("_", ""), name))
        if name in CONTEXT_FIELDS and value not in (None, ""):
            out[name] = value
    return out


def parse_sidecar(data: bytes) -> dict[str, Any]:
    """A `.meta.json` sidecar: a JSON object, possibly with the fields under "metadata"."""
    try:
        payload = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"sidecar is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ValueError("sidecar must be a JSON object")
    if isinstance(payload.get("metadata"), dict):
        payload = {**payload, **payload["metadata"]}
    return normalise_fields(payload)


def fields_from_key(key: str, pattern: str) -> dict[str, str]:
    """Map folders to fields with a pattern such as `incoming/{team}/{agent_id}/`: each
    `{field}` matches one path segment; the pattern matches a leading part of the key."""
    if not pattern:
        return {}
    regex = ""
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", pattern):
        regex += re.escape(literal)
        if name:
            regex += f"(?P<{name}>[^/]+)"
    match = re.match(regex, key)
    return normalise_fields(match.groupdict()) if match else {}


def sidecar_keys(key: str) -> tuple[str, str]:
    """`call.wav.meta.json` (preferred) and `call.meta.json`, next to the file."""
    path = PurePosixPath(key)
    return f"{key}.meta.json", str(path.with_suffix("")) + ".meta.json"


def merge_context(
    *, sidecar: Mapping[str, Any], object_metadata: Mapping[str, Any], from_key: Mapping[str, Any]
) -> tuple[ConsultationContext, dict[str, str], list[str]]:
    """Sidecar beats object metadata beats the key pattern. Returns the context, where each
    field came from, and warnings for values that were dropped as invalid (bad metadata must
    not fail the consultation itself)."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, fields in (
        ("key_pattern", from_key),
        ("object_metadata", normalise_fields(object_metadata)),
        ("sidecar", sidecar),
    ):
        for name, value in fields.items():
            merged[name] = value
            sources[name] = source
    warnings: list[str] = []
    while True:
        try:
            return ConsultationContext.model_validate(merged), sources, warnings
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0])
                warnings.append(
                    f"ignored {name}={merged.get(name)!r} from {sources.get(name)}: {error['msg']}"
                )
                merged.pop(name, None)
                sources.pop(name, None)
