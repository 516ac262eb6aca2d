"""Conversation metrics from a timed transcript, in the spirit of AWS Post Call Analytics.

Talk time, talk share, speaking rate, silence, interruptions and agent response latency.
Everything that needs timestamps is None for untimed (typed or imported) transcripts;
turn and segment counts are always computed.

Choices worth knowing:
- A speaker's talk time is the union of their segment intervals, so overlapping segments
  of one speaker are not double counted. Shares divide by the sum of the three speakers'
  talk times, so agent + customer + unknown shares add up to 1 even when they overlap.
- Speaking rate uses `count_speech_units`: Hangul syllables for Korean (word counts are
  meaningless for an agglutinative language with unreliable STT spacing), words otherwise.
- Interruptions and latency only consider agent/customer pairs; "unknown" may be anyone.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript

_PLACEHOLDER = re.compile(r"\[[^\[\]\s]+\]")
_HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7a3]")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")

# An overlap shorter than this is treated as turn-taking jitter, not an interruption.
_MIN_INTERRUPTION_OVERLAP_S = 0.2
_ROUND_DIGITS = 3

Interval = tuple[float, float]


class CallMetrics(BaseModel):
    """Per-call conversation metrics; None where the transcript has no timing."""

    model_config = ConfigDict(extra="forbid")

    duration_s: float | None = None
    agent_talk_s: float | None = None
    customer_talk_s: float | None = None
    unknown_talk_s: float | None = None
    agent_talk_share: float | None = None
    customer_talk_share: float | None = None
    agent_words_per_minute: float | None = None
    customer_words_per_minute: float | None = None
    non_talk_s: float | None = None
    non_talk_share: float | None = None
    longest_silence_s: float | None = None
    interruptions_by_agent: int | None = None
    interruptions_by_customer: int | None = None
    agent_response_latency_median_s: float | None = None
    # Loudness (recordings): each speaker's median segment level, and segments well above
    # their own speaker's median (a raised voice), as Transcribe reports loudness per turn.
    agent_loudness_dbfs: float | None = None
    customer_loudness_dbfs: float | None = None
    raised_voice_count: int | None = None
    agent_turns: int = 0
    customer_turns: int = 0
    segment_count: int = 0


def count_speech_units(text: str) -> int:
    """Hangul syllables plus non-Hangul words; a redaction placeholder like [PHONE] is one unit."""
    text = _PLACEHOLDER.sub(" x ", text)
    syllables = len(_HANGUL_SYLLABLE.findall(text))
    words = len(_WORD.findall(_HANGUL_SYLLABLE.sub(" ", text)))
    return syllables + words


def compute_call_metrics(transcript: Transcript, *, silence_gap_s: float = 3.0) -> CallMetrics:
    """Compute call metrics; time-based fields stay None when the transcript is untimed."""
    agent_turns, customer_turns = _count_turns(_ordered(transcript))
    counts = {
        "agent_turns": agent_turns,
        "customer_turns": customer_turns,
        "segment_count": len(transcript.segments),
    }
    if not transcript.is_timed:
        return CallMetrics(duration_s=transcript.duration_s or None, **counts)
    return CallMetrics(**counts, **_timed_metrics(transcript, silence_gap_s))


def _timed_metrics(transcript: Transcript, silence_gap_s: float) -> dict[str, float | int | None]:
    segments = _ordered(transcript)
    max_end = max(_interval(s)[1] for s in segments)
    # Trust the segments if the stated duration is shorter than the speech itself.
    duration = max(transcript.duration_s or 0.0, max_end)
    talk = {sp: _union_length(_intervals(segments, sp)) for sp in Speaker}
    total_talk = sum(talk.values())
    gaps = [end - start for start, end in speech_gaps(transcript)]
    non_talk = sum(g for g in gaps if g > silence_gap_s)
    by_agent, by_customer = _interruptions(segments)
    return {
        "duration_s": _r(duration),
        "agent_talk_s": _r(talk[Speaker.AGENT]),
        "customer_talk_s": _r(talk[Speaker.CUSTOMER]),
        "unknown_talk_s": _r(talk[Speaker.UNKNOWN]),
        "agent_talk_share": _ratio(talk[Speaker.AGENT], total_talk),
        "customer_talk_share": _ratio(talk[Speaker.CUSTOMER], total_talk),
        "agent_words_per_minute": _rate(segments, Speaker.AGENT, talk[Speaker.AGENT]),
        "customer_words_per_minute": _rate(segments, Speaker.CUSTOMER, talk[Speaker.CUSTOMER]),
        "non_talk_s": _r(non_talk),
        "non_talk_share": _ratio(non_talk, duration),
        "longest_silence_s": _r(max(gaps, default=0.0)),
        "interruptions_by_agent": by_agent,
        "interruptions_by_customer": by_customer,
        "agent_response_latency_median_s": _latency_median(segments),
        **loudness_metrics(segments),
    }


RAISED_VOICE_DB = 6.0
_MIN_SEGMENTS_FOR_MEDIAN = 3


def raised_voice_segments(segments: Sequence[Segment]) -> list[Segment]:
    """Segments `RAISED_VOICE_DB` or more above their speaker's own median level (speakers
    with fewer than three measured segments have no median to rise above)."""
    by_speaker: dict[Speaker, list[Segment]] = {}
    for segment in segments:
        if segment.loudness_dbfs is not None:
            by_speaker.setdefault(segment.speaker, []).append(segment)
    raised = []
    for own in by_speaker.values():
        if len(own) < _MIN_SEGMENTS_FOR_MEDIAN:
            continue
        median = statistics.median(s.loudness_dbfs or 0.0 for s in own)
        raised += [s for s in own if (s.loudness_dbfs or 0.0) - median >= RAISED_VOICE_DB]
    return raised


def loudness_metrics(segments: Sequence[Segment]) -> dict[str, float | int | None]:
    if not any(s.loudness_dbfs is not None for s in segments):
        return {}

    def median_of(speaker: Speaker) -> float | None:
        levels = [s.loudness_dbfs for s in segments if s.speaker is speaker]
        measured = [level for level in levels if level is not None]
        return _r(statistics.median(measured)) if measured else None

    return {
        "agent_loudness_dbfs": median_of(Speaker.AGENT),
        "customer_loudness_dbfs": median_of(Speaker.CUSTOMER),
        "raised_voice_count": len(raised_voice_segments(segments)),
    }


def _ordered(transcript: Transcript) -> list[Segment]:
    """Segments in time order when timed (stable), otherwise as given."""
    if not transcript.is_timed:
        return list(transcript.segments)
    return sorted(transcript.segments, key=lambda s: _interval(s))


def _interval(segment: Segment) -> Interval:
    start = float(segment.start_s or 0.0)
    # A segment ending before it starts is an STT glitch; treat it as zero length.
    return start, max(start, float(segment.end_s or 0.0))


def _intervals(segments: Iterable[Segment], speaker: Speaker) -> list[Interval]:
    return [_interval(s) for s in segments if s.speaker is speaker]


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _union_length(intervals: Iterable[Interval]) -> float:
    return sum(end - start for start, end in _merge(intervals))


def interruption_events(segments: Sequence[Segment]) -> list[tuple[int, Segment]]:
    """Segments (with their position in `segments`) that start while the other party's
    previous segment is still running by at least the jitter allowance."""
    events: list[tuple[int, Segment]] = []
    last_seen: dict[Speaker, Interval] = {}
    for position, segment in enumerate(segments):
        start, end = _interval(segment)
        other = _other_party(segment.speaker)
        if other is not None and other in last_seen:
            other_start, other_end = last_seen[other]
            overlap = min(other_end, end) - start
            if other_start < start and overlap >= _MIN_INTERRUPTION_OVERLAP_S:
                events.append((position, segment))
        last_seen[segment.speaker] = (start, end)
    return events


def _interruptions(segments: Sequence[Segment]) -> tuple[int, int]:
    speakers = [segment.speaker for _, segment in interruption_events(segments)]
    return speakers.count(Speaker.AGENT), speakers.count(Speaker.CUSTOMER)


def speech_gaps(transcript: Transcript) -> list[tuple[float, float]]:
    """(start, end) of every stretch where nobody talks in a timed transcript, including
    before the first and after the last word; empty for untimed text."""
    if not transcript.is_timed:
        return []
    segments = _ordered(transcript)
    duration = max(transcript.duration_s or 0.0, max(_interval(s)[1] for s in segments))
    bounds = [0.0, *(x for i in _merge(_interval(s) for s in segments) for x in i), duration]
    return [
        (bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2) if bounds[i + 1] > bounds[i]
    ]


def _other_party(speaker: Speaker) -> Speaker | None:
    return {Speaker.AGENT: Speaker.CUSTOMER, Speaker.CUSTOMER: Speaker.AGENT}.get(speaker)


def _turns(segments: Sequence[Segment]) -> list[tuple[Speaker, list[Segment]]]:
    """Runs of consecutive segments by the same speaker."""
    turns: list[tuple[Speaker, list[Segment]]] = []
    for segment in segments:
        if turns and turns[-1][0] is segment.speaker:
            turns[-1][1].append(segment)
        else:
            turns.append((segment.speaker, [segment]))
    return turns


def _count_turns(segments: Sequence[Segment]) -> tuple[int, int]:
    speakers = [speaker for speaker, _ in _turns(segments)]
    return speakers.count(Speaker.AGENT), speakers.count(Speaker.CUSTOMER)


def _latency_median(segments: Sequence[Segment]) -> float | None:
    """Median time from the end of a customer turn to the start of the agent turn after it."""
    turns = _turns(segments)
    gaps = []
    for (prev_speaker, prev), (speaker, cur) in itertools.pairwise(turns):
        if prev_speaker is Speaker.CUSTOMER and speaker is Speaker.AGENT:
            customer_end = max(_interval(s)[1] for s in prev)
            agent_start = min(_interval(s)[0] for s in cur)
            gaps.append(max(0.0, agent_start - customer_end))
    return _r(statistics.median(gaps)) if gaps else None


def _rate(segments: Sequence[Segment], speaker: Speaker, talk_s: float) -> float | None:
    if talk_s <= 0:
        return None
    units = sum(count_speech_units(s.text) for s in segments if s.speaker is speaker)
    return _r(units / (talk_s / 60.0))


def _ratio(part: float, whole: float) -> float | None:
    return _r(part / whole) if whole > 0 else None


def _r(value: float) -> float:
    return round(value, _ROUND_DIGITS)
