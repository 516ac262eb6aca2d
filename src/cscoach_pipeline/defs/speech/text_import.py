"""Read a consultation that arrives as text (chat log, transcript, subtitles) into a Transcript.

Supported inputs, chosen by file extension:

* ``.txt`` / ``.md`` - one utterance per line with optional speaker prefixes
  ("Agent:", "**Customer:**", "[10:32:05] 상담원:"), markdown decoration dropped;
* ``.json`` - chat exports (a list of messages, or an object holding one, or JSON Lines);
* ``.srt`` / ``.vtt`` - subtitle cues with timings and optional voice tags.

Bytes are decoded defensively (BOM, UTF-8, BOM-less UTF-16, CP949) because contact-centre
systems export in whatever their vendor chose; anything that is not really text fails with a
:class:`TextImportError` whose message says why in plain words, since it is shown to users.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript
from cscoach_pipeline.errors import ConsultationInputError

__all__ = [
    "DEFAULT_MAX_CHAT_CHARS",
    "DEFAULT_MAX_CHAT_SEGMENTS",
    "MAX_JSON_DEPTH",
    "TEXT_EXTENSIONS",
    "TextImportError",
    "decode_text",
    "detect_language",
    "parse_text_consultation",
]

TEXT_EXTENSIONS = frozenset({".txt", ".md", ".json", ".srt", ".vtt"})

# A real consultation is a few hundred messages; a 50 MB export (832,202 messages) took 2 GB
# of memory and 455 s of analysis while every other consultation waited.
DEFAULT_MAX_CHAT_SEGMENTS = 20_000
DEFAULT_MAX_CHAT_CHARS = 2_000_000
# Chat exports nest a few levels; deeper JSON is hostile and would exhaust the stack.
MAX_JSON_DEPTH = 100
# No encoding we read spends more than 4 bytes on a character.
_MAX_BYTES_PER_CHAR = 4


class TextImportError(ConsultationInputError, ValueError):
    """Readable reason why a file could not be read as a text consultation."""


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------

_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
# Control characters that legitimately occur in text files.
_ALLOWED_CONTROLS = frozenset("\t\n\r\f")
_ALLOWED_CONTROL_BYTES = frozenset(b"\t\n\r\f")
_MAX_BAD_CHAR_RATIO = 0.05


def _format_pct(ratio: float) -> str:
    pct = ratio * 100
    return "<1" if 0 < pct < 1 else f"{pct:.0f}"


def _binary_byte_ratio(data: bytes) -> float:
    bad = sum(1 for b in data if (b < 0x20 and b not in _ALLOWED_CONTROL_BYTES) or b == 0x7F)
    return bad / len(data)


def _bad_char_ratio(text: str) -> float:
    """Share of characters that no text file should contain (controls, unassigned, private)."""
    if not text:
        return 0.0
    bad = 0
    for ch in text:
        if ch in _ALLOWED_CONTROLS or ch == "\ufeff":
            continue
        if unicodedata.category(ch) in ("Cc", "Cn", "Co", "Cs"):
            bad += 1
    return bad / len(text)


def _not_text(ratio: float) -> TextImportError:
    return TextImportError(
        f"file is not text: {_format_pct(ratio)}% of bytes are binary/control characters"
    )


def _sniff_utf16(data: bytes) -> str | None:
    """Guess the byte order of BOM-less UTF-16 from where the NUL bytes sit.

    ASCII (and the spaces, digits and punctuation of Korean text) encodes as one zero byte per
    code unit, always on the same side; binary files scatter NULs on both sides.
    """
    if len(data) < 2 or len(data) % 2:
        return None
    pairs = len(data) // 2
    nul_even = data[0::2].count(0) / pairs
    nul_odd = data[1::2].count(0) / pairs
    if nul_odd >= 0.1 and nul_even <= nul_odd * 0.1:
        return "utf-16-le"
    if nul_even >= 0.1 and nul_odd <= nul_even * 0.1:
        return "utf-16-be"
    return None


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode a text file's bytes, returning ``(text, encoding_name)``.

    Order: BOM, strict UTF-8, BOM-less UTF-16 (NUL-byte pattern), CP949 (the Windows superset of
    EUC-KR that Korean contact-centre software still writes). The result has no leading BOM and
    ``\\n`` newlines. Raises :class:`TextImportError` for empty, whitespace-only or binary input.
    """
    if not data:
        raise TextImportError("file is empty (0 bytes)")

    text: str | None = None
    encoding = ""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                text, encoding = data.decode(name), name
            except UnicodeDecodeError as exc:
                raise TextImportError(
                    f"file is not text: it starts with a {name} byte-order mark but byte "
                    f"{exc.start} is not valid {name}"
                ) from exc
            break

    if text is None and b"\x00" in data:
        # UTF-8 would happily decode NULs, so decide between UTF-16 and binary first.
        guess = _sniff_utf16(data)
        if guess is not None:
            try:
                text, encoding = data.decode(guess), guess
            except UnicodeDecodeError:
                text = None
        if text is None:
            raise _not_text(_binary_byte_ratio(data))

    if text is None:
        for name in ("utf-8", "cp949"):
            try:
                text, encoding = data.decode(name), name
                break
            except UnicodeDecodeError:
                continue
    if text is None:
        ratio = _binary_byte_ratio(data)
        if ratio > 0:
            raise _not_text(ratio)
        raise TextImportError("file is not text: it is not valid UTF-8, UTF-16 or CP949")

    bad = _bad_char_ratio(text)
    if bad > _MAX_BAD_CHAR_RATIO:
        raise _not_text(bad)

    text = text.removeprefix("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    if not text.strip():
        raise TextImportError(f"file contains only whitespace ({len(data)} bytes)")
    return text, encoding


# --------------------------------------------------------------------------------------------
# Language
# --------------------------------------------------------------------------------------------


def _is_hangul(ch: str) -> bool:
    o = ord(ch)
    return 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F


def _is_latin(ch: str) -> bool:
    o = ord(ch)
    return (
        ("a" <= ch <= "z") or ("A" <= ch <= "Z") or (0xC0 <= o <= 0x24F and o not in (0xD7, 0xF7))
    )


def detect_language(text: str) -> str | None:
    """Return "ko" if Hangul dominates the letters, "en" if Latin does, else None.

    A Hangul syllable block carries two or three letters' worth of sound, so it counts double:
    Korean consultations are full of English product names and should still come out "ko".
    """
    hangul = latin = letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        if _is_hangul(ch):
            hangul += 1
        elif _is_latin(ch):
            latin += 1
    if letters == 0 or (hangul + latin) * 2 < letters:
        return None  # no letters, or another script (Japanese, Chinese, ...) dominates
    return "ko" if hangul * 2 >= latin else "en"


# --------------------------------------------------------------------------------------------
# Speaker labels
# --------------------------------------------------------------------------------------------

_AGENT_ROLES = frozenset(
    {
        "agent",
        "representative",
        "rep",
        "csr",
        "advisor",
        "adviser",
        "support",
        "operator",
        "assistant",
        "staff",
        "customer_service",
        "customer_support",
        "customer_care",
        "상담원",
        "상담사",
        "직원",
        "고객센터",  # "customer centre" is the company side, despite starting with 고객
        "콜센터",
    }
)
_CUSTOMER_ROLES = frozenset(
    {
        "customer",
        "client",
        "caller",
        "user",
        "visitor",
        "end_user",
        "enduser",
        "고객",
        "손님",
        "고객님",
    }
)
# Korean labels take honorific/particle suffixes (상담사님, 고객분), so match them as prefixes.
_KO_AGENT_PREFIXES = ("상담원", "상담사", "직원")
_KO_CUSTOMER_PREFIXES = ("고객", "손님")


def _role_of_token(token: str) -> Speaker | None:
    if token in _AGENT_ROLES or token.startswith(_KO_AGENT_PREFIXES):
        return Speaker.AGENT
    if token in _CUSTOMER_ROLES or token.startswith(_KO_CUSTOMER_PREFIXES):
        return Speaker.CUSTOMER
    return None


def _normalise_label(label: str) -> str:
    return " ".join(label.strip().strip("[]*_").strip().casefold().split())


def _speaker_for_label(label: str, agent_names: Sequence[str]) -> Speaker | None:
    """Map a speaker label to a role, or None if it names nobody we recognise."""
    norm = _normalise_label(label)
    if not norm:
        return None
    tokens = [t for t in re.split(r"[\W_]+", norm) if t]
    names = [_normalise_label(n) for n in agent_names if n and n.strip()]
    if norm in names or any(" " not in n and n in tokens for n in names):
        return Speaker.AGENT
    exact = _role_of_token(norm.replace(" ", "_").replace("-", "_"))
    if exact is not None:
        return exact
    if not tokens:
        return None
    # "Customer Support" is the agent, "Agent Kim" too: the last word decides, then the first.
    return _role_of_token(tokens[-1]) or _role_of_token(tokens[0])


def _looks_like_name(label: str) -> bool:
    """Whether an unrecognised "X:" prefix is plausibly a speaker name rather than prose."""
    words = label.split()
    if not 1 <= len(words) <= 3:
        return False
    if re.search(r"[?!,;\"“”<>=/\\|{}]", label) or not any(c.isalpha() for c in label):
        return False
    # Names are capitalised ("John Smith", "Speaker 2"); "note to self:" is prose. Hangul is
    # caseless, so it passes.
    return all(not w[0].islower() for w in words)


# --------------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------------

_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
_CLOCK_RE = re.compile(
    r"^(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{2})(?:[.,](?P<f>\d{1,3}))?\s*(?P<ampm>[AaPp][Mm])?$"
)


def _clock_seconds(value: str) -> float | None:
    """Seconds for "HH:MM:SS(.mmm)" / "MM:SS(.mmm)"; "HH:MM AM" is read as a wall-clock time."""
    m = _CLOCK_RE.match(value.strip())
    if not m:
        return None
    h, mi, s = int(m["h"] or 0), int(m["m"]), int(m["s"])
    frac = float(f"0.{m['f']}") if m["f"] else 0.0
    if m["ampm"]:
        if m["h"] is None:  # "10:32 PM" is hours and minutes, not minutes and seconds
            h, mi, s = mi, s, 0
        h = h % 12 + (12 if m["ampm"].lower() == "pm" else 0)
    return h * 3600 + mi * 60 + s + frac


_DATE = r"\d{4}[-./]\d{1,2}[-./]\d{1,2}"
_LEADING_TS_RE = re.compile(
    rf"^(?P<open>[\[(])?\s*(?:(?P<date>{_DATE})[ T])?(?P<clock>{_CLOCK}(?:\s?[AaPp][Mm])?)\s*"
    rf"(?(open)[\])])\s*(?:[-\u2013\u2014|]\s+)?"
)


def _date_seconds(date: str) -> float:
    y, mo, d = (int(p) for p in re.split(r"[-./]", date))
    try:
        return datetime(y, mo, d, tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def _rebase_wall_clock(times: list[float | None], absolute: bool) -> list[float | None]:
    """Turn wall-clock or dated times into seconds from the first one.

    Offsets under an hour ("00:01:23") are already relative to the recording and stay as they
    are; dated or later-in-the-day times ("10:32:05") are clock readings. Passing midnight is
    undone so a chat at 23:59 -> 00:01 stays increasing.
    """
    known = [t for t in times if t is not None]
    if not known or (not absolute and known[0] < 3600):
        return times
    origin = known[0]
    out: list[float | None] = []
    prev = origin
    day = 0.0
    for t in times:
        if t is None:
            out.append(None)
            continue
        if not absolute and t + day < prev - 12 * 3600:
            day += 86400
        value = t + day
        prev = value
        out.append(value - origin)
    return out


# --------------------------------------------------------------------------------------------
# Plain text / markdown
# --------------------------------------------------------------------------------------------

_TS_AFTER = rf"(?:[\[(](?P<ts>{_CLOCK})[\])]|(?P<ts2>{_CLOCK}))"
# "**Agent:**", "**Agent**:", "*Agent:*", "__Agent__:"
_BOLD_LABEL_RE = re.compile(
    r"^(?P<mk>\*\*|__|\*|_)(?P<label>[^*_]{1,60}?)\s*(?P<c1>[:\uff1a])?\s*(?P=mk)\s*"
    rf"{_TS_AFTER}?\s*(?P<c2>[:\uff1a])?\s*(?P<rest>.*)$"
)
_BRACKET_LABEL_RE = re.compile(
    rf"^\[(?P<label>[^\]\[]{{1,60}})\]\s*{_TS_AFTER}?\s*(?P<c2>[:\uff1a])?\s*(?P<rest>.*)$"
)
_PLAIN_LABEL_RE = re.compile(
    rf"^(?P<label>[^:\uff1a\[\]*]{{1,60}}?)\s*{_TS_AFTER}?\s*(?P<c2>[:\uff1a])\s*(?P<rest>.*)$"
)
_HEADING_RE = re.compile(r"^#{1,6}(?:\s|$)")
_RULE_RE = re.compile(r"^(?:[-*_]\s*){3,}$|^```|^~~~")
_BULLET_RE = re.compile(r"^(?:[-*+>]\s+)+")


@dataclass
class _Line:
    speaker: Speaker | None  # None: no label on this line
    text: str
    time: float | None = None


def _parse_label(line: str, agent_names: Sequence[str]) -> tuple[Speaker, str, str | None] | None:
    """Split a speaker label off a line: (speaker, rest, timestamp after the name) or None."""
    for regex in (_BOLD_LABEL_RE, _BRACKET_LABEL_RE, _PLAIN_LABEL_RE):
        m = regex.match(line)
        if not m:
            continue
        label = m["label"].strip()
        rest = m["rest"].strip()
        ts = m["ts"] or m["ts2"]
        has_colon = bool(m["c2"] or (m.groupdict().get("c1")))
        if rest.startswith("//"):  # "see http://..." is a URL, not a speaker called "see http"
            return None
        if regex is _PLAIN_LABEL_RE and label[-1:].isdigit() and rest[:1].isdigit():
            return None  # "meet at 10:30" - a time, not a label
        role = _speaker_for_label(label, agent_names)
        if role is not None:
            return role, rest, ts
        if has_colon and _looks_like_name(label):
            return Speaker.UNKNOWN, rest, ts
        return None
    return None


def _split_line(raw: str, agent_names: Sequence[str]) -> _Line | None:
    line = raw.strip()
    if not line or _HEADING_RE.match(line) or _RULE_RE.match(line):
        return None
    line = _BULLET_RE.sub("", line).strip()
    if not line:
        return None

    time: float | None = None
    m = _LEADING_TS_RE.match(line)
    if m:
        clock = m["clock"]
        rest = line[m.end() :].strip()
        # A bare "10:30" at the start may be prose ("10:30 works for me"); only trust it when
        # bracketed, precise (HH:MM:SS, dated) or followed by a speaker label.
        trusted = bool(m["open"] or m["date"] or clock.count(":") == 2 or "." in clock)
        if trusted or _parse_label(rest, agent_names) is not None:
            secs = _clock_seconds(clock)
            if secs is not None:
                time = secs + (_date_seconds(m["date"]) if m["date"] else 0.0)
                line = rest

    parsed = _parse_label(line, agent_names)
    if parsed is None:
        return _Line(None, line, time) if (line or time is not None) else None
    speaker, rest, ts = parsed
    if ts is not None and time is None:
        time = _clock_seconds(ts)
    return _Line(speaker, rest, time)


def _parse_lines(text: str, agent_names: Sequence[str], max_segments: int) -> list[Segment]:
    lines = [ln for ln in (_split_line(raw, agent_names) for raw in text.split("\n")) if ln]
    has_dated = bool(re.search(rf"^\W*{_DATE}[ T]", text, re.MULTILINE))
    labelled = any(ln.speaker is not None for ln in lines)

    # Build (speaker, text parts, time) groups.
    groups: list[tuple[Speaker, list[str], float | None]] = []
    for ln in lines:
        if ln.speaker is not None:
            groups.append((ln.speaker, [ln.text] if ln.text else [], ln.time))
        elif groups and labelled and ln.time is None:
            groups[-1][1].append(ln.text)  # continuation of the previous speaker
        elif groups and labelled:
            groups.append((groups[-1][0], [ln.text], ln.time))  # timed line, same speaker
        else:
            # No labels anywhere: every line is its own utterance of an unknown speaker.
            groups.append((Speaker.UNKNOWN, [ln.text], ln.time))

    groups = [g for g in groups if " ".join(g[1]).strip()]
    if len(groups) > max_segments:  # before any Segment is built
        raise _too_many_segments(max_segments)
    times = _rebase_wall_clock([g[2] for g in groups], absolute=has_dated)
    segments: list[Segment] = []
    for i, ((speaker, parts, _), start) in enumerate(zip(groups, times, strict=True)):
        end = times[i + 1] if i + 1 < len(times) and start is not None else None
        segments.append(
            Segment(start_s=start, end_s=end, speaker=speaker, text=" ".join(parts).strip())
        )
    return segments


# --------------------------------------------------------------------------------------------
# JSON chat exports
# --------------------------------------------------------------------------------------------

_JSON_LIST_KEYS = ("messages", "transcript", "conversation", "chat", "items", "segments")
_JSON_SPEAKER_KEYS = ("speaker", "role", "author", "sender", "from", "participant", "name")
_JSON_NESTED_SPEAKER_KEYS = ("role", "type", "name")
_JSON_TEXT_KEYS = ("text", "message", "content", "body", "utterance")
_JSON_START_KEYS = ("start", "start_s", "start_time", "offset", "timestamp", "time", "ts")
_JSON_END_KEYS = ("end", "end_s", "end_time")
_NO_MESSAGES = "JSON chat export has no messages: expected a list or an object with " + ", ".join(
    f"'{k}'" for k in _JSON_LIST_KEYS
)


_JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_BRACKET_RE = re.compile(r"[\[\]{}]")


def _json_too_deep(text: str) -> bool:
    """Whether arrays/objects nest deeper than MAX_JSON_DEPTH (strings are skipped)."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for m in _JSON_BRACKET_RE.finditer(_JSON_STRING_RE.sub('""', text)):
        depth += 1 if m.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def _load_json(text: str) -> Any:
    too_deep = TextImportError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if _json_too_deep(text):
        raise too_deep
    try:
        return json.loads(text)
    except RecursionError:
        raise too_deep from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            # JSON Lines: one message object per line.
            try:
                return [json.loads(ln) for ln in text.split("\n") if ln.strip()]
            except json.JSONDecodeError:
                pass
        raise TextImportError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc


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
                role = _speaker_for_label(cand, agent_names)
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
    clock = _clock_seconds(s)
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


def _too_many_segments(limit: int) -> TextImportError:
    return TextImportError(
        f"chat is too long: more than {limit:,} messages (the limit is set by "
        "CSCOACH_MAX_CHAT_SEGMENTS)"
    )


def _parse_json(text: str, agent_names: Sequence[str], max_segments: int) -> list[Segment]:
    messages = _find_messages(_load_json(text))
    if messages is None:
        raise TextImportError(_NO_MESSAGES)
    if not messages:
        raise TextImportError("JSON chat export has no messages: the message list is empty")

    rows: list[tuple[Speaker, str, tuple[float, bool] | None, tuple[float, bool] | None]] = []
    recognised = 0
    for msg in messages:
        if isinstance(msg, str):  # a list of "Agent: ..." lines
            recognised += 1
            line = _split_line(msg, agent_names)
            if line and line.text:
                if len(rows) >= max_segments:
                    raise _too_many_segments(max_segments)
                rows.append((line.speaker or Speaker.UNKNOWN, line.text, None, None))
            continue
        if not isinstance(msg, dict) or not any(k in msg for k in _JSON_TEXT_KEYS):
            continue
        recognised += 1
        body = next(_json_text(msg[k]) for k in _JSON_TEXT_KEYS if k in msg)
        if not body:
            continue  # typing indicators, attachments, system events without text
        if len(rows) >= max_segments:
            raise _too_many_segments(max_segments)
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


# --------------------------------------------------------------------------------------------
# Subtitles (SRT, WebVTT)
# --------------------------------------------------------------------------------------------

_CUE_TIME = r"(?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
_TIMING_RE = re.compile(rf"^\s*(?P<start>{_CUE_TIME})\s*-->\s*(?P<end>{_CUE_TIME})(?:\s+.*)?$")
_VOICE_RE = re.compile(r"<v(?:\.[^\s>]*)?\s+(?P<name>[^>]+)>", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]*>")
_ASS_TAG_RE = re.compile(r"\{\\[^}]*\}")


def _cue_speaker_and_text(
    lines: list[str], agent_names: Sequence[str]
) -> list[tuple[Speaker, str]]:
    """Split a cue's lines into (speaker, text) parts; a new voice tag starts a new part."""
    parts: list[tuple[Speaker | None, list[str]]] = []
    for raw in lines:
        voice = _VOICE_RE.search(raw)
        clean = html.unescape(_TAG_RE.sub("", _ASS_TAG_RE.sub("", raw))).strip()
        if voice:
            name = voice["name"].strip()
            role = _speaker_for_label(name, agent_names) or Speaker.UNKNOWN
            parts.append((role, [clean] if clean else []))
        elif parts:
            if clean:
                parts[-1][1].append(clean)
        else:
            parts.append((None, [clean] if clean else []))

    out: list[tuple[Speaker, str]] = []
    for speaker, texts in parts:
        text = " ".join(t for t in texts if t).strip()
        if speaker is None:
            # No voice tag: look for an "Agent:" / "상담원:" prefix in the text itself.
            parsed = _parse_label(text, agent_names)
            if parsed is not None:
                speaker, text = parsed[0], parsed[1]
            else:
                speaker = Speaker.UNKNOWN
        if text:
            out.append((speaker, text))
    return out


def _parse_subtitles(
    text: str, agent_names: Sequence[str], kind: str, max_segments: int
) -> list[Segment]:
    blocks = [b.split("\n") for b in re.split(r"\n[ \t]*\n", text.strip("\n"))]
    segments: list[Segment] = []
    cue_no = 0
    for block_index, block in enumerate(blocks):
        lines = [ln for ln in block if ln.strip()]
        if not lines:
            continue
        head = lines[0].strip()
        if kind == ".vtt" and block_index == 0 and head.startswith("WEBVTT"):
            # Header (and its metadata lines); tolerate a first cue with no blank line before it.
            first_timing = next((i for i, ln in enumerate(lines) if "-->" in ln), None)
            if first_timing is None:
                continue
            lines = lines[max(1, first_timing - 1) :]
            if lines and "-->" not in lines[0] and ":" in lines[0]:
                lines = lines[1:]  # "Kind: captions" directly above the timing
            head = lines[0].strip()
        if head.split(" ")[0] in ("NOTE", "STYLE", "REGION") or head in ("NOTE", "STYLE"):
            continue

        timing_index = next((i for i, ln in enumerate(lines[:3]) if "-->" in ln), None)
        cue_no += 1
        label = lines[0].strip() if timing_index == 1 else str(cue_no)
        if timing_index is None:
            if head.isdigit() and len(lines) > 1:
                raise TextImportError(
                    f"cue {head} has malformed timing: expected a line like "
                    f"'00:00:01,000 --> 00:00:04,000', got '{lines[1].strip()[:60]}'"
                )
            if segments:  # a blank line inside a cue's text: keep it with that cue
                cue_no -= 1
                extra = " ".join(t for _, t in _cue_speaker_and_text(lines, agent_names))
                if extra:
                    segments[-1].text = f"{segments[-1].text} {extra}".strip()
                continue
            raise TextImportError(f"cue {cue_no} has no timing line ('start --> end')")

        m = _TIMING_RE.match(lines[timing_index])
        start = _clock_seconds(m["start"]) if m else None
        end = _clock_seconds(m["end"]) if m else None
        if start is None or end is None:
            raise TextImportError(
                f"cue {label} has malformed timing: '{lines[timing_index].strip()[:60]}'"
            )
        if end < start:
            raise TextImportError(f"cue {label} has malformed timing: it ends before it starts")
        for speaker, body in _cue_speaker_and_text(lines[timing_index + 1 :], agent_names):
            if len(segments) >= max_segments:
                raise _too_many_segments(max_segments)
            segments.append(Segment(start_s=start, end_s=end, speaker=speaker, text=body))
    return segments


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _sniff_format(text: str, extension: str) -> str:
    """A ".txt" that is really WebVTT, SRT or JSON is parsed as what it is."""
    if extension != ".txt":
        return extension
    head = text.lstrip()
    if head.startswith("WEBVTT"):
        return ".vtt"
    first = head.split("\n", 2)
    if len(first) >= 2 and first[0].strip().isdigit() and _TIMING_RE.match(first[1]):
        return ".srt"
    if head[:1] in "[{":
        if _json_too_deep(head):
            return ".json"  # so that the reason is the nesting, not "no dialogue"
        try:
            json.loads(head)
        except (ValueError, RecursionError):
            return extension
        return ".json"
    return extension


def parse_text_consultation(
    data: bytes,
    extension: str,
    agent_names: Sequence[str] = (),
    *,
    max_segments: int = DEFAULT_MAX_CHAT_SEGMENTS,
    max_chars: int = DEFAULT_MAX_CHAT_CHARS,
) -> Transcript:
    """Parse a text consultation file into a Transcript (``source="text"``).

    ``extension`` is the file's suffix (".txt", "txt", ".VTT" all work); ``agent_names`` are
    names that should be read as the agent when used as speaker labels. Raises
    :class:`TextImportError` with a user-readable reason when the file cannot be used.

    A chat longer than ``max_chars`` characters (checked on the bytes before decoding, then
    on the text before parsing) or with more than ``max_segments`` messages (checked while
    parsing) is refused, so memory and analysis time stay bounded.
    """
    ext = extension.strip().lower()
    if not ext.startswith("."):
        ext = f".{ext}"
    if ext not in TEXT_EXTENSIONS:
        raise TextImportError(
            f"unsupported text format '{ext}': expected one of {', '.join(sorted(TEXT_EXTENSIONS))}"
        )

    too_long = (
        "chat is too long: {} more than the {:,} characters allowed (the limit is set by "
        "CSCOACH_MAX_CHAT_CHARS)"
    )
    if len(data) > max_chars * _MAX_BYTES_PER_CHAR:
        raise TextImportError(too_long.format(f"its {len(data):,} bytes hold", max_chars))
    text, _encoding = decode_text(data)
    if len(text) > max_chars:
        raise TextImportError(too_long.format(f"{len(text):,} characters,", max_chars))
    kind = _sniff_format(text, ext)
    if kind == ".json":
        segments = _parse_json(text, agent_names, max_segments)
    elif kind in (".srt", ".vtt"):
        segments = _parse_subtitles(text, agent_names, kind, max_segments)
    else:
        segments = _parse_lines(text, agent_names, max_segments)

    segments = [s for s in segments if s.text.strip()]
    if not segments:
        raise TextImportError("no dialogue found in text")

    # The last timing we know bounds the consultation; untimed text has no duration.
    ends = [t for s in segments for t in (s.end_s, s.start_s) if t is not None]
    return Transcript(
        segments=segments,
        language=detect_language(" ".join(s.text for s in segments)),
        duration_s=max(ends) if ends else None,
        source="text",
        engine=None,
        model=None,
    )
