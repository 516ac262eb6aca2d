"""The check that an analysis can be relied on beyond its schema (which every answer passed
already): its evidence quotes are in the transcript (a quote that is not was made up), the
segments it scores exist, and its free text holds no PII (the model saw redacted text only,
so any is invented or leaked)."""

from __future__ import annotations

import re

from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis
from cscoach_pipeline.defs.checks import CheckOutcome
from cscoach_pipeline.defs.privacy.checks import residual_pii
from cscoach_pipeline.defs.speech.transcript import Transcript

ANALYSIS_VALID = "analysis_valid"
_ELISION = re.compile(r"\.\.\.|…")
_NOT_WORD = re.compile(r"[^\w\[\]]+", re.UNICODE)


def _normal(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def quote_found(quote: str, transcript_text: str) -> bool:
    """Verbatim up to case, punctuation and spacing; "..." may elide words between parts."""
    parts = [_normal(p) for p in _ELISION.split(quote)]
    return all(part in transcript_text for part in parts if part)


def analysis_validity(
    analysis: ConsultationAnalysis, transcript: Transcript, answer_pii: int = 0
) -> CheckOutcome:
    """`answer_pii`: findings redacted from the model's answer before it was stored."""
    said = _normal(" ".join(s.text for s in transcript.segments))
    quotes = [p.evidence_quote for p in analysis.improvement_points] + [
        a.evidence_quote for a in analysis.scorecard_answers
    ]
    quotes = [q for q in quotes if q.strip()]
    missing = [q for q in quotes if not quote_found(q, said)]
    out_of_range = [
        t.segment for t in analysis.turn_sentiment if t.segment >= len(transcript.segments)
    ]
    free_text = [
        analysis.summary, analysis.customer_intent, analysis.issue,
        *analysis.agent_strengths, *analysis.coaching_tips,
        *(p.point for p in analysis.improvement_points),
    ]  # fmt: skip
    pii = residual_pii(free_text)
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} of {len(quotes)} evidence quotes are not in the transcript"
        )
    if out_of_range:
        problems.append(f"{len(out_of_range)} scored segments do not exist")
    if answer_pii:
        problems.append(
            f"the model's answer held {answer_pii} possible PII findings (redacted before it "
            "was stored)"
        )
    if pii:
        problems.append(f"its stored text holds possible PII ({sum(pii.values())} findings)")
    metadata = {
        "evidence_quotes": len(quotes),
        "quotes_not_found": len(missing),
        "segments_scored": len(analysis.turn_sentiment),
        "segments_out_of_range": len(out_of_range),
        "pii_redacted_from_answer": answer_pii,
        "pii_findings": sum(pii.values()),
    }
    if missing:
        # The quotes themselves come from the model: shown redacted, as a hint where to look.
        from cscoach_pipeline.defs.privacy.pii import redact_text

        metadata["first_missing_quote"] = redact_text(missing[0])[:200]
    if not problems:
        return CheckOutcome(
            ANALYSIS_VALID, True,
            f"{len(quotes)} evidence quotes found in the transcript; no PII in its text",
            metadata,
        )  # fmt: skip
    return CheckOutcome(ANALYSIS_VALID, False, "; ".join(problems), metadata, error=bool(pii))
