"""Plain-text and Markdown consultations: one utterance per line with optional speaker labels
("Agent:", "**Customer:**", "[10:32:05] 상담원:"), Markdown decoration dropped, unlabelled lines
joined to the speaker above them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cscoach_pipeline.defs.speech.text_import.base import ParseRequest, too_many_segments
from cscoach_pipeline.defs.speech.text_import.speakers import looks_like_name, speaker_for_label
from cscoach_pipeline.defs.speech.text_import.timestamps import (
    CLOCK,
    DATE,
    clock_seconds,
    date_seconds,
    rebase_wall_clock,
)
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker

_LEADING_TS_RE = re.compile(
    rf"^(?P<open>[\[(])?\s*(?:(?P<date>{DATE})[ T])?(?P<clock>{CLOCK}(?:\s?[AaPp][Mm])?)\s*"
    rf"(?(open)[\])])\s*(?:[-\u2013\u2014|]\s+)?"
)
_TS_AFTER = rf"(?:[\[(](?P<ts>{CLOCK})[\])]|(?P<ts2>{CLOCK}))"
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
class Line:
    speaker: Speaker | None  # None: no label on this line
    text: str
    time: float | None = None


def parse_label(line: str, agent_names: Sequence[str]) -> tuple[Speaker, str, str | None] | None:
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
        role = speaker_for_label(label, agent_names)
        if role is not None:
            return role, rest, ts
        if has_colon and looks_like_name(label):
            return Speaker.UNKNOWN, rest, ts
        return None
    return None


def split_line(raw: str, agent_names: Sequence[str]) -> Line | None:
    """One line's speaker, text and time; None for blank lines and Markdown decoration."""
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
        if trusted or parse_label(rest, agent_names) is not None:
            secs = clock_seconds(clock)
            if secs is not None:
                time = secs + (date_seconds(m["date"]) if m["date"] else 0.0)
                line = rest

    parsed = parse_label(line, agent_names)
    if parsed is None:
        return Line(None, line, time) if (line or time is not None) else None
    speaker, rest, ts = parsed
    if ts is not None and time is None:
        time = clock_seconds(ts)
    return Line(speaker, rest, time)


def parse_lines(request: ParseRequest) -> list[Segment]:
    text, agent_names, max_segments = request.text, request.agent_names, request.max_segments
    lines = [ln for ln in (split_line(raw, agent_names) for raw in text.split("\n")) if ln]
    has_dated = bool(re.search(rf"^\W*{DATE}[ T]", text, re.MULTILINE))
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
        raise too_many_segments(max_segments)
    times = rebase_wall_clock([g[2] for g in groups], absolute=has_dated)
    segments: list[Segment] = []
    for i, ((speaker, parts, _), start) in enumerate(zip(groups, times, strict=True)):
        end = times[i + 1] if i + 1 < len(times) and start is not None else None
        segments.append(
            Segment(start_s=start, end_s=end, speaker=speaker, text=" ".join(parts).strip())
        )
    return segments
