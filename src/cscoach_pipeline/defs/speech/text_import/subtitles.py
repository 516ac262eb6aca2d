"""Subtitle consultations (SRT, WebVTT): one segment per cue and speaker, timed by the cue,
with the speaker from a voice tag (``<v Agent>``) or a label in the text ("상담원: ...")."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from cscoach_pipeline.defs.speech.text_import.base import (
    ParseRequest,
    TextImportError,
    too_many_segments,
)
from cscoach_pipeline.defs.speech.text_import.lines import parse_label
from cscoach_pipeline.defs.speech.text_import.speakers import speaker_for_label
from cscoach_pipeline.defs.speech.text_import.timestamps import clock_seconds
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker

_CUE_TIME = r"(?:\d+:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
TIMING_RE = re.compile(rf"^\s*(?P<start>{_CUE_TIME})\s*-->\s*(?P<end>{_CUE_TIME})(?:\s+.*)?$")
_VOICE_RE = re.compile(r"<v(?:\.[^\s>]*)?\s+(?P<name>[^>]+)>", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]*>")
_ASS_TAG_RE = re.compile(r"\{\\[^}]*\}")


def looks_like_srt(head: str) -> bool:
    """Whether text (without leading whitespace) opens like SRT: a cue number, then a timing."""
    first = head.split("\n", 2)
    return len(first) >= 2 and first[0].strip().isdigit() and bool(TIMING_RE.match(first[1]))


def looks_like_vtt(head: str) -> bool:
    """Whether text (without leading whitespace) opens with the WebVTT header."""
    return head.startswith("WEBVTT")


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
            role = speaker_for_label(name, agent_names) or Speaker.UNKNOWN
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
            parsed = parse_label(text, agent_names)
            if parsed is not None:
                speaker, text = parsed[0], parsed[1]
            else:
                speaker = Speaker.UNKNOWN
        if text:
            out.append((speaker, text))
    return out


def _parse_subtitles(request: ParseRequest, vtt: bool) -> list[Segment]:
    text, agent_names, max_segments = request.text, request.agent_names, request.max_segments
    blocks = [b.split("\n") for b in re.split(r"\n[ \t]*\n", text.strip("\n"))]
    segments: list[Segment] = []
    cue_no = 0
    for block_index, block in enumerate(blocks):
        lines = [ln for ln in block if ln.strip()]
        if not lines:
            continue
        head = lines[0].strip()
        if vtt and block_index == 0 and head.startswith("WEBVTT"):
            # Header (and its metadata lines); tolerate a first cue with no blank line before it.
            first_timing = next((i for i, ln in enumerate(lines) if "-->" in ln), None)
            if first_timing is None:
                continue
            lines = lines[max(1, first_timing - 1) :]
            if lines and "-->" not in lines[0] and ":" in lines[0]:
                lines = lines[1:]  # "Kind: captions" directly above the timing
            if not lines:  # the timing sat on the WEBVTT line itself: nothing else here
                continue
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

        m = TIMING_RE.match(lines[timing_index])
        start = clock_seconds(m["start"]) if m else None
        end = clock_seconds(m["end"]) if m else None
        if start is None or end is None:
            raise TextImportError(
                f"cue {label} has malformed timing: '{lines[timing_index].strip()[:60]}'"
            )
        if end < start:
            raise TextImportError(f"cue {label} has malformed timing: it ends before it starts")
        for speaker, body in _cue_speaker_and_text(lines[timing_index + 1 :], agent_names):
            if len(segments) >= max_segments:
                raise too_many_segments(max_segments)
            segments.append(Segment(start_s=start, end_s=end, speaker=speaker, text=body))
    return segments


def parse_srt(request: ParseRequest) -> list[Segment]:
    return _parse_subtitles(request, vtt=False)


def parse_vtt(request: ParseRequest) -> list[Segment]:
    return _parse_subtitles(request, vtt=True)
