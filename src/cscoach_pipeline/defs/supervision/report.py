"""Markdown a supervisor reads in the UI: the day's agents by score and the review queue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_SHOWN = 15


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 1 or value == 0 else f"{value:.2f}"
    return str(value).replace("|", "/")


def agent_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The latest day's agents, best mean score first."""
    if not rows:
        return "No consultations on these days."
    day = max(r["day"] for r in rows)
    ranked = sorted(
        (r for r in rows if r["day"] == day),
        key=lambda r: (r["mean_score"] is None, -(r["mean_score"] or 0.0)),
    )
    lines = [
        f"**{day}**",
        "",
        "| agent | team | consultations | mean score | pass rate | failed |",
        "|---|---|---|---|---|---|",
        *(
            f"| {_cell(r['agent_name'] or r['agent_id'])} | {_cell(r['team'] or None)} "
            f"| {r['consultations']} | {_cell(r['mean_score'])} | {_cell(r['pass_rate'])} "
            f"| {r['failed']} |"
            for r in ranked[:_SHOWN]
        ),
    ]
    return "\n".join(lines)


def queue_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The latest day's review queue, first to listen to first."""
    if not rows:
        return "Nothing to review on these days."
    day = max(r["day"] for r in rows)
    lines = [
        f"**{day}**",
        "",
        "| # | consultation | agent | score | why |",
        "|---|---|---|---|---|",
        *(
            f"| {r['rank']} | {_cell(r['source_key'])} | {_cell(r['agent_id'])} "
            f"| {_cell(r['overall_score'])} | {_cell(r['reasons'])} |"
            for r in sorted((r for r in rows if r["day"] == day), key=lambda r: r["rank"])[:_SHOWN]
        ),
    ]
    return "\n".join(lines)
