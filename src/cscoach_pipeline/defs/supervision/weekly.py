"""A week from the day aggregates: each agent's and each team's days combined, weighted by
the consultations scored (a quiet day counts for less than a busy one)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_WEIGHTED = ("mean_score", "pass_rate", "resolved_rate", "escalated_rate",
             "customer_sentiment_end")  # fmt: skip


def _weighted(rows: Sequence[Mapping[str, Any]], column: str) -> float | None:
    pairs = [(r[column], r["scored"] or 0) for r in rows if r.get(column) is not None]
    weight = sum(w for _, w in pairs)
    if not weight:
        return None
    return round(sum(v * w for v, w in pairs) / weight, 3)


def _questions(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    weights: dict[str, float] = defaultdict(float)
    for row in rows:
        for question, score in (row.get("question_scores") or {}).items():
            if score is None:
                continue
            totals[question] += score * (row["scored"] or 0)
            weights[question] += row["scored"] or 0
    return {q: round(totals[q] / weights[q], 1) for q in totals if weights[q]}


def combine(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One row of figures for several days of one agent, team or the centre."""
    combined: dict[str, Any] = {
        "days": len(rows),
        "consultations": sum(r["consultations"] for r in rows),
        "scored": sum(r["scored"] for r in rows),
        "failed": sum(r["failed"] for r in rows),
        "question_scores": _questions(rows),
        "llm_cost_usd": round(sum(r.get("llm_cost_usd") or 0.0 for r in rows), 6),
    }
    for column in _WEIGHTED:
        combined[column] = _weighted(rows, column)
    return combined


def week_agents(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per agent over the week's `agent_daily_scorecards` rows."""
    by_agent: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_agent[row["agent_id"]].append(row)
    agents = []
    for agent_id, days in by_agent.items():
        latest = max(days, key=lambda r: r["day"])
        agents.append(
            {
                "agent_id": agent_id,
                "agent_name": latest["agent_name"],
                "team": latest["team"],
                **combine(days),
            }
        )
    return agents
