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

from cscoach_pipeline.defs.privacy.pii import PiiKind, redact, redact_text

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
# Identifiers: redacting part of one makes no sense, so one carrying personal data is dropped.
# A long digit run is the id itself there; only contact data and national ids are PII.
_ID_FIELDS = frozenset({"agent_id", "customer_id"})
_ID_PII_KINDS = frozenset({PiiKind.PHONE, PiiKind.EMAIL, PiiKind.CARD, PiiKind.RRN})
_PII_NAMES = {
    PiiKind.PHONE: "a phone number",
    PiiKind.EMAIL: "an email address",
    PiiKind.CARD: "a card number",
    PiiKind.RRN: "a resident registration number",
    PiiKind.ACCOUNT: "an account number",
    PiiKind.NUMBER: "a long number",
}
_PLACEHOLDERS_RE = re.compile(r"\[(?:" + "|".join(k.value for k in PiiKind) + r")\]", re.IGNORECASE)


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
        low = value.strip().lower()
        # Lower-case, except a redaction placeholder: "[PHONE]" stays as every table has it.
        return _DIRECTIONS.get(low, _PLACEHOLDERS_RE.sub(lambda m: m.group().upper(), low))

    @field_validator("recorded_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # Stored as UTC everywhere: SQLite keeps wall-clock time and drops the offset.
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator(
        "agent_id", "agent_name", "team", "channel", "customer_id", "call_direction", mode="before"
    )
    @classmethod
    def _text(cls, value: Any) -> str | None:
        odd = None if value is None else _not_scalar(value)
        if odd is not None:
            raise ValueError(f"expected text or a number, got {odd}")
        if value is None or str(value).strip() == "":
            return None
        return str(value).strip()


def _not_scalar(value: Any) -> str | None:
    """What a value is when it is not one piece of text or a number (JSON true, a list...)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if not isinstance(value, str | int | float | datetime):
        return f"a {type(value).__name__}"
    return None


def _screen(name: str, value: Any, source: str | None) -> tuple[Any, str | None]:
    """A field's value as it may be stored (None: dropped) and a warning, if any.

    Warnings name the field, its source and the kind of personal data, never the value."""
    odd = _not_scalar(value)
    if odd is not None:
        return None, f"ignored {name} from {source}: expected text or a number, got {odd}"
    if name == "recorded_at" or not isinstance(value, str | int | float):
        return value, None
    result = redact(str(value))
    kinds = [PiiKind(kind) for kind in result.counts]
    if name in _ID_FIELDS:
        kinds = [kind for kind in kinds if kind in _ID_PII_KINDS]
        if kinds:
            return None, (
                f"ignored {name} from {source}: it holds {_kind_names(kinds)}, and an id must "
                "not carry personal data"
            )
        return value, None
    if not kinds:
        return value, None
    if not any(ch.isalnum() for ch in _PLACEHOLDERS_RE.sub("", result.text)):
        return None, f"ignored {name} from {source}: it holds only {_kind_names(kinds)}"
    return result.text, f"redacted {_kind_names(kinds)} from {name} ({source})"


def _kind_names(kinds: list[PiiKind]) -> str:
    return " and ".join(_PII_NAMES[kind] for kind in kinds)


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
    not fail the consultation itself).

    Values must be one piece of text or a number (a number id such as 7 becomes "7"); lists,
    objects and true/false are dropped. Personal data (phone, email, card, RRN...) in a
    free-text field is redacted, keeping the rest; an id field holding any is dropped."""
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
    for name in list(merged):
        value, warning = _screen(name, merged[name], sources.get(name))
        if warning is not None:
            warnings.append(warning)
        if value is None:
            merged.pop(name)
            sources.pop(name, None)
        else:
            merged[name] = value
    while True:
        try:
            return ConsultationContext.model_validate(merged), sources, warnings
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0])
                shown = redact_text(repr(merged.get(name)))  # never a raw phone or email
                warnings.append(f"ignored {name}={shown} from {sources.get(name)}: {error['msg']}")
                merged.pop(name, None)
                sources.pop(name, None)
