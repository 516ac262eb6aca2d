"""The coaching report a supervisor reads for one consultation (Markdown)."""

from __future__ import annotations

from cscoach_pipeline.defs.analysis.schema import RUBRIC_CRITERIA, ConsultationAnalysis

REPORT_ARTIFACT = "report.md"


def coaching_report(source_key: str, score: float, analysis: ConsultationAnalysis) -> str:
    rubric = [(name, getattr(analysis.rubric, name)) for name in RUBRIC_CRITERIA]
    lines = [
        f"# Coaching report: {source_key}",
        "",
        f"**Overall score:** {score} / 100  ",
        f"**Resolution:** {analysis.resolution_status.value}  ",
        f"**Customer sentiment:** {analysis.customer_sentiment.start.value} -> "
        f"{analysis.customer_sentiment.end.value}",
        "",
        "## Summary",
        analysis.summary,
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
