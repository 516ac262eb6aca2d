"""How far a transcript can be trusted: the recogniser's own confidence per segment
(exp of the mean token log-probability), weighted by duration. Low confidence means the
words, and every score built on them, deserve a listen first."""

from __future__ import annotations

from cscoach_pipeline.defs.checks import CheckOutcome
from cscoach_pipeline.defs.speech.transcript import Segment, Transcript

TRANSCRIPT_CONFIDENCE = "transcript_confidence"
MIN_MEAN_CONFIDENCE = 0.55
LOW_CONFIDENCE = 0.4
MAX_LOW_SHARE = 0.25


def transcript_confidence(transcript: Transcript) -> CheckOutcome:
    if transcript.source != "stt":
        return CheckOutcome(
            TRANSCRIPT_CONFIDENCE, True, "imported text: nothing was recognised",
            {"source": transcript.source},
        )  # fmt: skip
    scored = [s for s in transcript.segments if s.confidence is not None]
    if not scored:
        what = "the engine reported no confidence" if transcript.segments else "no speech"
        return CheckOutcome(TRANSCRIPT_CONFIDENCE, True, what, {"segments": 0})

    weight = _duration
    total = sum(weight(s) for s in scored)
    mean = sum(weight(s) * (s.confidence or 0.0) for s in scored) / total
    low = sum(weight(s) for s in scored if (s.confidence or 0.0) < LOW_CONFIDENCE) / total
    passed = mean >= MIN_MEAN_CONFIDENCE and low <= MAX_LOW_SHARE
    description = f"mean recognition confidence {mean:.2f}; {low:.0%} of the speech below " + (
        f"{LOW_CONFIDENCE}" if passed else f"{LOW_CONFIDENCE}: listen before trusting its scores"
    )
    return CheckOutcome(
        TRANSCRIPT_CONFIDENCE,
        passed,
        description,
        {
            "mean_confidence": round(mean, 3),
            "low_confidence_share": round(low, 3),
            "segments": len(scored),
            "min_mean_confidence": MIN_MEAN_CONFIDENCE,
            "max_low_share": MAX_LOW_SHARE,
        },
    )


def _duration(segment: Segment) -> float:
    if segment.start_s is not None and segment.end_s is not None:
        return max(segment.end_s - segment.start_s, 0.1)
    return max(1.0, len(segment.text) / 15)  # untimed: ~15 characters a second
