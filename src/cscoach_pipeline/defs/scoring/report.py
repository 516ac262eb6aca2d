"""The coaching report a supervisor reads for one consultation (Markdown)."""

from __future__ import annotations

from collections.abc import Sequence

from cscoach_pipeline.defs.analysis.schema import RUBRIC_CRITERIA, ConsultationAnalysis
from cscoach_pipeline.defs.scoring.categories import CategoryMatch
from cscoach_pipeline.defs.scoring.scorecards import ScorecardResult

REPORT_ARTIFACT = "report.md"


def coaching_report(
    source_key: str,
    score: float,
    analysis: ConsultationAnalysis,
    card: ScorecardResult,
    categories: Sequence[CategoryMatch] = (),
) -> str:
    rubric = [(name, getattr(analysis.rubric, name)) for name in RUBRIC_CRITERIA]
    lines = [
        f"# Coaching report: {source_key}",
        "",
        f"**Overall score:** {score} / 100 ({card.scorecard.title}, {card.scorecard.label})  ",
        f"**Result:** {card.pass_state.value.replace('_', ' ')}: {card.reason}  ",
        f"**Resolution:** {analysis.resolution_status.value}  ",
        f"**Customer sentiment:** {analysis.customer_sentiment.start.value} -> "
        f"{analysis.customer_sentiment.end.value}",
        "",
        "## Summary",
        analysis.summary,
        "",
        "## Scorecard",
        "| question | answer | score | why |",
        "|---|---|---|---|",
        *(
            f"| {a.question.id}{' (critical)' if a.question.critical else ''} | {a.answer.answer} "
            f"| {'–' if a.score is None else f'{a.score:g}/{a.question.max_score:g}'} "
            f"| {a.answer.evidence} |"
            for a in card.answers
        ),
        "",
        "## Categories",
        *(
            f"- **{m.title}** ({m.severity.value})"
            + (f" at {m.start_s:.0f} s" if m.start_s is not None else "")
            + f": {m.evidence}"
            for m in categories
        ),
        *(() if categories else ("None fired.",)),
        "",
        "## Rubric",
        "| criterion | score | reason |",
        "|---|---|---|",
        *(f"| {name} | {item.score}/5 | {item.reason} |" for name, item in rubric),
        "",
        "## Strengths",
        *(f"- {s}" for s in analysis.agent_strengths),
        "",
        "## To improve",
        *(
            f"- {p.point}" + (f' — "{p.evidence_quote}"' if p.evidence_quote else "")
            for p in analysis.improvement_points
        ),
        "",
        "## Coaching tips",
        *(f"- {t}" for t in analysis.coaching_tips),
    ]
    return "\n".join(lines) + "\n"
