"""Proves the supervisor aggregates through the real pipeline, on SQLite and PostgreSQL:
chats of three agents in two teams over three days (sidecars give agent, team and
recorded_at) are processed, then the `daily_aggregates` sensor asks for the days they
belong to and the refresh runs them.

- `agent_daily_scorecards` rows equal what this test computes from `quality_metrics`
  (consultations, scored, mean and median score, pass rate per day and agent), with scores
  per scorecard question;
- `team_daily_trends` has each team and the centre per day, with rolling means over the
  days so far;
- `review_queue` ranks the consultation with a failed critical question first, with why;
- the score's materialization names the agent, team and source file;
- the morning schedule asks the day before's reports, which land in the bucket per team
  and for the centre (Markdown and three PNG charts), the centre's shown with its charts;
  the Monday schedule likewise the week before's (the week's figures day by day, agents
  combined over the week);
- the BI starter's queries (bi/queries/) answer on the same warehouse, SQLite and PostgreSQL;
- a late consultation for an earlier day refreshes that day only (and the trend days after
  it), a reanalysis refreshes every affected day, and a look with nothing new asks nothing.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    RunRequest,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
)

from cscoach_pipeline.defs.supervision.sensors import range_request
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.query import run_query
from tests.support.evaluation import EVALUATION_SET
from tests.support.pipeline import PipelineHarness
from tests.support.postgres import temporary_database

BI_QUERIES = Path(__file__).resolve().parents[3] / "bi" / "queries"

pytestmark = pytest.mark.integration


def _chat(case_id: str) -> bytes:
    import yaml

    cases = yaml.safe_load(EVALUATION_SET.read_text(encoding="utf-8"))["cases"]
    (case,) = [c for c in cases if c["id"] == case_id]
    names = {"A": "Agent", "C": "Customer"}
    return "".join(f"{names[s]}: {t}\n" for s, t in case["turns"]).encode()


GOOD, RUDE, HEDGING = "en-01-card-lost-model", "en-02-rude-refund", "en-04-hedging-agent"
ESCALATED = "en-05-escalation-handled"
# (file, evaluation case, agent, team, recorded_at)
DROPS = [
    ("d1-a1-good.txt", GOOD, "A-1", "cards", "2026-11-20T09:00:00+00:00"),
    ("d1-a1-rude.txt", RUDE, "A-1", "cards", "2026-11-20T10:00:00+00:00"),
    ("d1-a2-hedging.txt", HEDGING, "A-2", "cards", "2026-11-20T11:00:00+00:00"),
    ("d1-a3-escalated.txt", ESCALATED, "A-3", "loans", "2026-11-20T23:30:00+00:00"),
    ("d2-a1-good.txt", GOOD, "A-1", "cards", "2026-11-21T08:00:00+00:00"),
    ("d2-a3-hedging.txt", HEDGING, "A-3", "loans", "2026-11-21T12:00:00+00:00"),
    ("d3-a2-good.txt", GOOD, "A-2", "cards", "2026-11-22T15:00:00+00:00"),
]


_UNIQUE = itertools.count(1)


def _drop(harness: PipelineHarness, name: str, case: str, agent: str, team: str, at: str) -> None:
    # Trailing spaces make each file's content its own (identical content is a duplicate).
    harness.drop(name, _chat(case) + b" " * next(_UNIQUE))
    sidecar = {"agent_id": agent, "agent_name": f"Agent {agent}", "team": team, "recorded_at": at}
    harness.drop(name.replace(".txt", ".meta.json"), json.dumps(sidecar).encode())


def _look(harness: PipelineHarness, cursor: str | None) -> tuple[list[RunRequest], str | None]:
    sensor = harness.defs.get_sensor_def("daily_aggregates")
    context = build_sensor_context(
        instance=harness.instance, cursor=cursor, resources=harness.resources,
        definitions=harness.defs,
    )  # fmt: skip
    result = sensor(context)
    assert isinstance(result, SensorResult)
    return list(result.run_requests or []), result.cursor


def _refresh(harness: PipelineHarness, requests: list[RunRequest]) -> None:
    job = harness.defs.resolve_job_def("refresh_daily_aggregates")
    for request in requests:
        result = job.execute_in_process(
            instance=harness.instance,
            tags=request.tags,
            asset_selection=request.asset_selection,
            raise_on_error=False,
        )
        assert result.success


def _scheduled_partition(harness: PipelineHarness, job: str, when: datetime) -> str | None:
    """The partition the job's schedule asks for at `when`."""
    schedule = harness.defs.get_schedule_def(f"{job}_schedule")
    context = build_schedule_context(instance=harness.instance, scheduled_execution_time=when)
    (request,) = schedule.evaluate_tick(context).run_requests or []
    return request.partition_key


def _run_reports(harness: PipelineHarness, job: str, partition: str) -> Any:
    return harness.defs.resolve_job_def(job).execute_in_process(
        instance=harness.instance, partition_key=partition, raise_on_error=False
    )


def _expected(harness: PipelineHarness) -> dict[tuple[date, str], dict]:
    """Per (day, agent), from quality_metrics (each consultation's newest row) directly."""
    consultations = {r["consultation_id"]: r for r in harness.warehouse.fetch_rows(
        tables.consultations)}  # fmt: skip
    newest: dict[str, dict] = {}
    for row in harness.warehouse.fetch_rows(tables.quality_metrics):
        current = newest.get(row["consultation_id"])
        if current is None or row["created_at"] > current["created_at"]:
            newest[row["consultation_id"]] = row
    groups: dict[tuple[date, str], list[dict]] = defaultdict(list)
    for consultation_id, row in newest.items():
        context = consultations[consultation_id]
        groups[(context["recorded_at"].date(), context["agent_id"])].append(row)
    return {
        key: {
            "consultations": len(rows),
            "scored": len(rows),
            "mean_score": round(statistics.mean(r["overall_score"] for r in rows), 3),
            "median_score": round(statistics.median(r["overall_score"] for r in rows), 3),
            "pass_rate": round(sum(r["pass_state"] == "passed" for r in rows) / len(rows), 3),
        }
        for key, rows in groups.items()
    }


def _agent_rows(harness: PipelineHarness) -> dict[tuple[date, str], dict]:
    return {
        (r["day"], r["agent_id"]): r
        for r in harness.warehouse.fetch_rows(tables.agent_daily_scorecards)
    }


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        return
    with temporary_database() as url:
        yield url


def test_daily_aggregates_follow_the_scores(tmp_path: Path, warehouse_url: str) -> None:
    harness = PipelineHarness(root=tmp_path / "run", warehouse_url=warehouse_url)
    for drop in DROPS:
        _drop(harness, *drop)
    results = harness.process()
    assert len(results) == len(DROPS) and all(r.success for r in results.values())

    # Who handled it sits beside the score in the UI.
    event = harness.instance.get_latest_materialization_event(AssetKey("quality_metrics"))
    assert event is not None and event.asset_materialization is not None
    shown = event.asset_materialization.metadata
    assert shown["agent_id"].value.startswith("A-") and shown["team"].value in {"cards", "loans"}
    assert shown["source_key"].value.startswith("incoming/d")

    requests, cursor = _look(harness, None)
    ranges = sorted(
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"],
         tuple(sorted(k.to_user_string() for k in r.asset_selection or [])))
        for r in requests
    )  # fmt: skip
    today = date.today().isoformat()
    assert ranges == [
        ("2026-11-20", "2026-11-22", ("agent_daily_scorecards", "review_queue")),
        ("2026-11-20", min("2026-12-19", today), ("team_daily_trends",)),
    ]
    _refresh(harness, requests)

    rows = _agent_rows(harness)
    expected = _expected(harness)
    assert set(rows) == set(expected)
    for key, figures in expected.items():
        row = rows[key]
        assert {k: row[k] for k in figures} == figures, key
        assert row["team"] == ("loans" if key[1] == "A-3" else "cards")
        assert row["agent_name"] == f"Agent {key[1]}"
        assert row["failed"] == 0
        assert set(row["question_scores"]) >= {"greeting", "compliance", "closing"}
    day1_a1 = rows[(date(2026, 11, 20), "A-1")]
    assert day1_a1["consultations"] == 2 and day1_a1["pass_rate"] == 0.5
    assert day1_a1["question_scores"]["compliance"] == 50.0  # passed once, failed once

    trends = {(r["day"], r["scope"], r["team"]): r
              for r in harness.warehouse.fetch_rows(tables.team_daily_trends)}  # fmt: skip
    centre_d1 = trends[(date(2026, 11, 20), "centre", "")]
    assert (centre_d1["consultations"], centre_d1["agents"]) == (4, 3)
    cards_d3 = trends[(date(2026, 11, 22), "team", "cards")]
    cards_scores = [
        e["mean_score"] * e["scored"] for (d, agent), e in expected.items() if agent != "A-3"
    ]
    cards_scored = sum(e["scored"] for (_, agent), e in expected.items() if agent != "A-3")
    assert cards_d3["rolling_7d_consultations"] == cards_scored == 5
    assert cards_d3["rolling_7d_mean_score"] == pytest.approx(
        sum(cards_scores) / cards_scored, abs=1e-3
    )
    assert cards_d3["rolling_7d_mean_score"] == cards_d3["rolling_28d_mean_score"]
    # Refreshed alone, a day's rolling means still reach the days before it.
    _refresh(harness, [range_request(("team_daily_trends",), date(2026, 11, 22),
                                      date(2026, 11, 22))])  # fmt: skip
    alone = next(
        r
        for r in harness.warehouse.fetch_rows(tables.team_daily_trends)
        if (r["day"], r["scope"], r["team"]) == (date(2026, 11, 22), "team", "cards")
    )
    assert {k: alone[k] for k in alone if k.startswith("rolling")} == {
        k: cards_d3[k] for k in cards_d3 if k.startswith("rolling")
    }  # fmt: skip

    queue = sorted(
        (r for r in harness.warehouse.fetch_rows(tables.review_queue)
         if r["day"] == date(2026, 11, 20)),
        key=lambda r: r["rank"],
    )  # fmt: skip
    assert queue[0]["failed_critical"] and queue[0]["agent_id"] == "A-1"
    assert queue[0]["reasons"].startswith("critical question failed: compliance")
    assert queue[0]["source_key"] == "incoming/d1-a1-rude.txt"
    assert all(not r["failed_critical"] for r in queue[1:])
    assert [r["rank"] for r in queue] == list(range(1, len(queue) + 1))

    # The BI starter's queries run on this warehouse and answer.
    answers = {path.stem: run_query(warehouse_url, path.read_text(encoding="utf-8"))
               for path in sorted(BI_QUERIES.glob("*.sql"))}  # fmt: skip
    assert len(answers) >= 7
    # No reviewer files here: the calibration query answers with no rows, every other with some.
    assert answers.pop("calibration").empty
    assert all(len(frame) for frame in answers.values())
    assert set(answers["agent_ranking"]["day"].astype(str)) == {"2026-11-22"}
    assert answers["worst_calls"]["source_key"].iloc[0] == "incoming/d1-a1-rude.txt"
    assert answers["review_queue_latest"]["rank"].tolist()[0] == 1
    assert len(answers["centre_trend"]) >= 3

    # The morning schedule writes the day before's reports: the centre's in the UI with its
    # charts, each team's in the bucket.
    morning = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)
    assert _scheduled_partition(harness, "daily_team_reports_job", morning) == "2026-11-20"
    reports = _run_reports(harness, "daily_team_reports_job", "2026-11-20")
    assert reports.success
    for team in ("centre", "cards", "loans"):
        prefix = f"reports/daily/2026-11-20/{team}/"
        markdown = harness.backend.get(prefix + "report.md").decode()
        assert "# Daily report: " in markdown and "![agent ranking](agent_ranking.png)" in markdown
        for chart in ("score_trend.png", "agent_ranking.png", "scorecard_heat_map.png"):
            assert harness.backend.get(prefix + chart).startswith(b"\x89PNG")
    event = harness.instance.get_latest_materialization_event(AssetKey("daily_team_reports"))
    assert event is not None and event.asset_materialization is not None
    shown = event.asset_materialization.metadata["report"].value
    assert shown.startswith("# Daily report: the centre, 2026-11-20")
    assert shown.count("](data:image/png;base64,") == 3
    assert "**Consultations:** 4 (4 scored, 0 failed), **agents:** 3" in shown

    # Each Monday morning, the week before: Monday 16 to Sunday 22 November.
    monday = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    assert _scheduled_partition(harness, "weekly_team_reports_job", monday) == "2026-11-16"
    week = _run_reports(harness, "weekly_team_reports_job", "2026-11-16")
    assert week.success
    for team in ("centre", "cards", "loans"):
        prefix = f"reports/weekly/2026-11-16/{team}/"
        markdown = harness.backend.get(prefix + "report.md").decode()
        assert "to 2026-11-22" in markdown and "## Agents over the week" in markdown
        for chart in ("score_trend.png", "agent_ranking.png", "scorecard_heat_map.png"):
            assert harness.backend.get(prefix + chart).startswith(b"\x89PNG")
    event = harness.instance.get_latest_materialization_event(AssetKey("weekly_team_reports"))
    assert event is not None and event.asset_materialization is not None
    shown = event.asset_materialization.metadata["report"].value
    assert shown.startswith("# Weekly report: the centre, 2026-11-16 to 2026-11-22")
    assert "**Consultations:** 7 (7 scored, 0 failed) over 3 days, **agents:** 3" in shown
    assert shown.count("](data:image/png;base64,") == 3
    for day in ("2026-11-20", "2026-11-21", "2026-11-22"):
        assert f"| {day} |" in shown
    cards = harness.backend.get("reports/weekly/2026-11-16/cards/report.md").decode()
    assert "**Consultations:** 5 (5 scored, 0 failed) over 3 days, **agents:** 2" in cards

    # Nothing new: nothing asked.
    assert _look(harness, cursor)[0] == []

    # A late consultation for the first day: that day only (and the trends after it).
    computed = {k: r["computed_at"] for k, r in _agent_rows(harness).items()}
    _drop(harness, "late-a2.txt", RUDE, "A-2", "cards", "2026-11-20T16:00:00+00:00")
    assert all(r.success for r in harness.process().values())
    requests, cursor = _look(harness, cursor)
    daily = next(r for r in requests if "team_daily_trends" not in str(r.asset_selection))
    assert daily.tags["dagster/asset_partition_range_start"] == "2026-11-20"
    assert daily.tags["dagster/asset_partition_range_end"] == "2026-11-20"
    _refresh(harness, requests)
    rows = _agent_rows(harness)
    assert rows[(date(2026, 11, 20), "A-2")]["consultations"] == 2
    assert rows[(date(2026, 11, 20), "A-2")]["failed"] == 0
    assert rows[(date(2026, 11, 21), "A-1")]["computed_at"] == computed[(date(2026, 11, 21), "A-1")]
    assert rows[(date(2026, 11, 20), "A-1")]["computed_at"] != computed[(date(2026, 11, 20), "A-1")]
    assert {k: {f: rows[k][f] for f in v} for k, v in _expected(harness).items()} == _expected(
        harness
    )

    # A reanalysis rescoring everything refreshes every day it touches.
    assert harness.reanalyze_all("v2").success
    requests, _ = _look(harness, cursor)
    daily = next(r for r in requests if "team_daily_trends" not in str(r.asset_selection))
    assert (
        daily.tags["dagster/asset_partition_range_start"],
        daily.tags["dagster/asset_partition_range_end"],
    ) == ("2026-11-20", "2026-11-22")
    _refresh(harness, requests)
    rows = _agent_rows(harness)
    assert {k: {f: rows[k][f] for f in v} for k, v in _expected(harness).items()} == _expected(
        harness
    )
