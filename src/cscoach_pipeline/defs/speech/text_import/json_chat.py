"""JSON chat exports: a list of messages, an object holding one, or JSON Lines, with speakers,
bodies and times under whichever of the usual keys the exporting system chose."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from cscoach_pipeline.defs.speech.text_import.base import (
    ParseRequest,
    TextImportError,
    too_many_segments,
)
from cscoach_pipeline.defs.speech.text_import.lines import split_line
from cscoach_pipeline.defs.speech.text_import.speakers import speaker_for_label
from cscoach_pipeline.defs.speech.text_import.timestamps import clock_seconds
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker

# Chat exports nest a few levels; deeper JSON is hostile and would exhaust the stack.
MAX_JSON_DEPTH = 100

_JSON_LIST_KEYS = ("messages", "transcript", "conversation", "chat", "items", "segments")
_JSON_SPEAKER_KEYS = ("speaker", "role", "author", "sender", "from", "participant", "name")
_JSON_NESTED_SPEAKER_KEYS = ("role", "type", "name")
_JSON_TEXT_KEYS = ("text", "message", "content", "body", "utterance")
_JSON_START_KEYS = ("start", "start_s", "start_time", "offset", "timestamp", "time", "ts")
_JSON_END_KEYS = ("end", "end_s", "end_time")
_NO_MESSAGES = "JSON chat export has no messages: expected a list or an object with " + ", ".join(
    f"'{k}'" for k in _JSON_LIST_KEYS
)
# What json.loads accepts before a value; str.lstrip() skips more (e.g. U+3000).
_JSON_WHITESPACE = " \t\n\r"

_JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_BRACKET_RE = re.compile(r"[\[\]{}]")


def _too_deep() -> TextImportError:
    return TextImportError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def _invalid(exc: json.JSONDecodeError) -> TextImportError:
    return TextImportError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")


def json_too_deep(text: str) -> bool:
    """Whether arrays/objects nest deeper than MAX_JSON_DEPTH (strings are skipped)."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for m in _JSON_BRACKET_RE.finditer(_JSON_STRING_RE.sub('""', text)):
        depth += 1 if m.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def load_json(text: str) -> Any:
    """The document in ``text`` (one JSON value, or JSON Lines as a list), or a readable error."""
    if json_too_deep(text):
        raise _too_deep()
    try:
        return json.loads(text)
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            # JSON Lines: one message object per line.
            try:
                return [json.loads(ln) for ln in text.split("\n") if ln.strip()]
            except json.JSONDecodeError:
                pass
        raise _invalid(exc) from exc


def sniff_document(text: str, head: str) -> Any | None:
    """The JSON document a ".txt" holds, or None if it is not one JSON value (JSON Lines are
    read as lines). ``head`` is ``text.lstrip()``, which the caller already has. Nesting is
    scanned here, once, and the document handed to the parser.

    Raises the nesting error for hostile depth, so that the reason is the nesting rather than
    "no dialogue", and the parse error for a document behind whitespace JSON does not allow.
    """
    if json_too_deep(head):
        raise _too_deep()
    try:
        doc = json.loads(head)
    except (ValueError, RecursionError):
        return None
    if text[: len(text) - len(head)].strip(_JSON_WHITESPACE):
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise _invalid(exc) from exc
    return doc


def _find_messages(doc: Any, depth: int = 0) -> list[Any] | None:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and depth < 3:
        for key in _JSON_LIST_KEYS:
            if key in doc:
                found = _find_messages(doc[key], depth + 1)
                if found is not None:
                    return found
    return None


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return " ".join(t for t in (_json_text(v) for v in value) if t)
    if isinstance(value, dict):  # {"type": "text", "text": "..."} content parts
        for key in _JSON_TEXT_KEYS:
            if key in value:
                return _json_text(value[key])
    return ""


def _json_speaker(msg: dict[str, Any], agent_names: Sequence[str]) -> Speaker:
    for key in _JSON_SPEAKER_KEYS:
        value = msg.get(key)
        candidates: Iterable[Any]
        if isinstance(value, dict):
            candidates = (value.get(k) for k in _JSON_NESTED_SPEAKER_KEYS)
        else:
            candidates = (value,)
        for cand in candidates:
            if isinstance(cand, str):
                role = speaker_for_label(cand, agent_names)
                if role is not None:
                    return role
    return Speaker.UNKNOWN


def _json_time(value: Any) -> tuple[float, bool] | None:
    """(seconds, is_absolute) for a number, "HH:MM:SS" offset, numeric string or ISO datetime."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        v = float(value)
        if v > 1e11:  # epoch milliseconds
            return v / 1000, True
        return v, v > 1e9  # epoch seconds vs an offset into the conversation
    if not isinstance(value, str) or not value.strip():
        return None
    s = value.strip()
    clock = clock_seconds(s)
    if clock is not None:
        return clock, False
    try:
        return _json_time(float(s))
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace(" ", "T", 1) if "T" not in s else s)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp(), True


def _first_time(msg: dict[str, Any], keys: Sequence[str]) -> tuple[float, bool] | None:
    for key in keys:
        if key in msg:
            t = _json_time(msg[key])
            if t is not None:
                return t
    return None


def parse_json(request: ParseRequest) -> list[Segment]:
    agent_names, max_segments = request.agent_names, request.max_segments
    # Sniffing a ".txt" hands over the document it already loaded; a sniffed document is a
    # list or an object, never None.
    doc = request.preloaded if request.preloaded is not None else load_json(request.text)
    messages = _find_messages(doc)
    if messages is None:
        raise TextImportError(_NO_MESSAGES)
    if not messages:
        raise TextImportError("JSON chat export has no messages: the message list is empty")

    rows: list[tuple[Speaker, str, tuple[float, bool] | None, tuple[float, bool] | None]] = []
    recognised = 0
    for msg in messages:
        if isinstance(msg, str):  # a list of "Agent: ..." lines
            recognised += 1
            line = split_line(msg, agent_names)
            if line and line.text:
                if len(rows) >= max_segments:
                    raise too_many_segments(max_segments)
                rows.append((line.speaker or Speaker.UNKNOWN, line.text, None, None))
            continue
        if not isinstance(msg, dict) or not any(k in msg for k in _JSON_TEXT_KEYS):
            continue
        recognised += 1
        body = next(_json_text(msg[k]) for k in _JSON_TEXT_KEYS if k in msg)
        if not body:
            continue  # typing indicators, attachments, system events without text
        if len(rows) >= max_segments:
            raise too_many_segments(max_segments)
        rows.append(
            (
                _json_speaker(msg, agent_names),
                body,
                _first_time(msg, _JSON_START_KEYS),
                _first_time(msg, _JSON_END_KEYS),
            )
        )
    if recognised == 0:
        raise TextImportError(
            f"JSON chat export has no recognisable messages: none of the {len(messages)} "
            "items has a " + ", ".join(f"'{k}'" for k in _JSON_TEXT_KEYS) + " field"
        )

    # Absolute times (ISO, epoch) become seconds from the first message; offsets stay as given.
    absolutes = [t[0] for r in rows for t in (r[2], r[3]) if t is not None and t[1]]
    origin = min((r[2][0] for r in rows if r[2] is not None and r[2][1]), default=None)
    if origin is None and absolutes:
        origin = min(absolutes)

    def rel(t: tuple[float, bool] | None) -> float | None:
        if t is None:
            return None
        value, absolute = t
        return round(value - origin, 3) if absolute and origin is not None else value

    starts = [rel(r[2]) for r in rows]
    segments: list[Segment] = []
    for i, (speaker, body, _, end_t) in enumerate(rows):
        end = rel(end_t)
        if end is None and starts[i] is not None and i + 1 < len(rows):
            end = starts[i + 1]  # chat messages have no end; the next message bounds them
        segments.append(Segment(start_s=starts[i], end_s=end, speaker=speaker, text=body))
    return segments
