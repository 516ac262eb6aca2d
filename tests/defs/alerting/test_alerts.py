"""Proves the alerts end to end on a real warehouse and the real sensor, delivered by the
real clients (slack_sdk's webhook client, dagster-msteams' Teams client, requests) to a local
webhook server:

- a failed consultation and a rejected file go out as one batched message per channel, with
  their readable reasons and links into the UI, and nothing personal: a phone number in the
  file name or the reason is redacted; the generic webhook's body is HMAC-signed;
- each alert is sent once: a second tick sends nothing, a lookback re-read is deduplicated;
- a channel that is down keeps its alerts pending and gets them, once, when it is back and
  its back-off wait is over; the other channels are not held up; its error never shows the
  webhook URL (the secret), even when the server echoes the path;
- an outage is told only once its retries gave up, not while it waits for one; the first
  look tells no history (earlier failures, a service's state at that moment);
- the LLM breaker opening and closing (from `service_health`) and the bucket unreachable
  (told only once it lasts past the grace) and back (told once the recovery has held);
- a review-queue item with a failed critical question, once per consultation and day even
  when the day is recomputed, and only for consultations scored since alerting began;
- the health observations themselves: the analysis records an open breaker and its end, the
  bucket sensor an unreachable bucket (a stopped S3 server) and its return.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context

from cscoach_pipeline.definitions import build_defs, build_resources
from cscoach_pipeline.defs.alerting.channels import SIGNATURE_HEADER
from cscoach_pipeline.defs.alerting.messages import AlertKind, compose
from cscoach_pipeline.defs.recovery.policy import GAVE_UP
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.engine import utcnow
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.settings import Settings
from tests.support.webhook_server import WebhookServer

SECRET = "s3cr3t-signing-key"
PHONE = "010-9876-5432"


@pytest.fixture
def hooks() -> Any:
    with WebhookServer() as server:
        yield server


@pytest.fixture
def setup(tmp_path: Path, hooks: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    urls = {
        "CSCOACH_ALERT_SLACK_WEBHOOK_URL": hooks.url("/slack/T000/B000/slack-secret-path"),
        "CSCOACH_ALERT_TEAMS_WEBHOOK_URL": hooks.url("/teams/workflow-secret-path"),
        "CSCOACH_ALERT_WEBHOOK_URL": hooks.url("/hook/hook-secret-path"),
        "CSCOACH_ALERT_WEBHOOK_SECRET": SECRET,
    }
    for name, value in urls.items():
        monkeypatch.setenv(name, value)  # the resources read them as EnvVar
    settings = Settings(
        bucket_url=(tmp_path / "bucket").as_uri(),
        warehouse_url=f"sqlite:///{tmp_path / 'warehouse.db'}",
        alert_slack_webhook_url=urls["CSCOACH_ALERT_SLACK_WEBHOOK_URL"],
        alert_teams_webhook_url=urls["CSCOACH_ALERT_TEAMS_WEBHOOK_URL"],
        alert_webhook_url=urls["CSCOACH_ALERT_WEBHOOK_URL"],
        alert_webhook_secret=SECRET,
        ui_url="http://dagster.example:3000",
    )
    defs = build_defs(settings)
    return {
        "defs": defs,
        "resources": build_resources(settings),
        "warehouse": WarehouseResource(url=settings.warehouse_url),
        "instance": DagsterInstance.ephemeral(),
        "urls": urls,
        "cursor": None,
    }


def _tick(setup: dict[str, Any]) -> str:
    sensor = setup["defs"].get_sensor_def("supervisor_alerts")
    context = build_sensor_context(
        instance=setup["instance"], cursor=setup["cursor"], resources=setup["resources"],
        definitions=setup["defs"],
    )  # fmt: skip
    result = sensor(context)
    assert isinstance(result, SkipReason)
    setup["cursor"] = context.cursor
    return result.skip_message or ""


def _backdate(warehouse: WarehouseResource, table: Any, column: str, *, seconds: float) -> None:
    with warehouse.engine.begin() as conn:
        conn.execute(table.update().values({column: utcnow() - timedelta(seconds=seconds)}))


def test_the_first_look_tells_no_history(setup: dict[str, Any], hooks: WebhookServer) -> None:
    warehouse = setup["warehouse"]
    warehouse.health.observe("llm:gemini:m", "open", healthy="closed", detail="old outage")
    _backdate(warehouse, tables.service_health, "occurred_at", seconds=2 * 3600)
    _fail(warehouse, "old-0000dddd", "failed", "failed before alerting was on")
    _tick(setup)
    _backdate(warehouse, tables.consultation_status, "updated_at", seconds=3600)
    _tick(setup)
    assert hooks.received == []


def test_an_outage_under_way_when_alerting_starts_is_told(
    setup: dict[str, Any], hooks: WebhookServer
) -> None:
    """Begun while the daemon was starting (before the sensor's first look): the present."""
    setup["warehouse"].health.observe("llm:gemini:m", "open", healthy="closed", detail="now")
    _tick(setup)
    (generic,) = hooks.on("/hook/hook-secret-path")
    assert generic.body["kind"] == "llm_outage"
    assert generic.body["items"][0]["state"] == "open"


def _fail(
    warehouse: WarehouseResource,
    consultation_id: str,
    status: str,
    error: str,
    *,
    key: str | None = None,
    kind: str = "input",
    run: str | None = None,
) -> None:
    warehouse.statuses.set(
        consultation_id, key or f"incoming/{consultation_id}.wav", status,
        stage="consultation_audio", error=error, run_id=run or f"run-{consultation_id}",
        failure_kind=kind,
    )  # fmt: skip


def test_failures_are_batched_redacted_signed_and_sent_once(
    setup: dict[str, Any], hooks: WebhookServer
) -> None:
    warehouse = setup["warehouse"]
    _tick(setup)  # the first look starts the watermarks: history is not told
    _fail(
        warehouse, "call-PHONE-1a2b3c4d", "failed", f"the audio cannot be decoded; ring {PHONE}",
        key=f"incoming/call {PHONE}.wav",
    )  # fmt: skip
    _fail(warehouse, "virus-5e6f7a8b", "rejected", "unsupported file type '.exe'")
    message = _tick(setup)
    assert "6 alerts queued" in message  # 2 items x 3 channels

    (hook,) = hooks.on("/hook/hook-secret-path")
    body = hook.body
    assert body["kind"] == "consultation_failed" and body["title"] == "Consultations failed (2)"
    assert {i["consultation_id"] for i in body["items"]} == {
        "call-PHONE-1a2b3c4d", "virus-5e6f7a8b"
    }  # fmt: skip
    failed = next(i for i in body["items"] if i["status"] == "failed")
    assert failed["reason"] == "the audio cannot be decoded; ring [PHONE]"
    assert failed["source_key"] == "incoming/call [PHONE].wav"
    assert failed["stage"] == "consultation_audio" and failed["failure_kind"] == "input"
    expected = hmac.new(SECRET.encode(), hook.raw, hashlib.sha256).hexdigest()
    assert hook.headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"

    (slack,) = hooks.on("/slack/T000/B000/slack-secret-path")
    blocks = slack.body["blocks"]
    assert blocks[0]["text"]["text"] == "Consultations failed (2)"
    section = blocks[1]["text"]["text"]
    assert "<http://dagster.example:3000/runs/run-call-PHONE-1a2b3c4d|" in section
    assert "unsupported file type" in section

    (teams,) = hooks.on("/teams/workflow-secret-path")
    card = teams.body["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    texts = [block["text"] for block in card["content"]["body"]]
    assert texts[0] == "**Consultations failed (2)**" and len(texts) == 3

    assert PHONE not in hooks.all_text() and "9876" not in hooks.all_text()
    # Sent once: the next look re-reads the lookback window and sends nothing.
    _tick(setup)
    assert len(hooks.received) == 3
    outbox = warehouse.fetch_rows(tables.alert_outbox)
    assert len(outbox) == 6 and {r["status"] for r in outbox} == {"sent"}
    # The run-failure sensor rewriting the same run's row (a later updated_at) tells nothing.
    _fail(warehouse, "virus-5e6f7a8b", "rejected", "unsupported file type '.exe'")
    _tick(setup)
    assert len(hooks.received) == 3


def test_an_outage_is_told_once_its_retries_gave_up(
    setup: dict[str, Any], hooks: WebhookServer
) -> None:
    warehouse = setup["warehouse"]
    _tick(setup)
    # The step records the outage as failed; the run-failure sensor then queues its retry.
    _fail(warehouse, "chat-3-0000cccc", "failed", "the warehouse is unreachable", kind="outage")
    _tick(setup)
    assert hooks.received == []
    reason = f"the warehouse is unreachable; {GAVE_UP} 4 attempts"
    _fail(warehouse, "chat-3-0000cccc", "failed", reason, kind="outage", run="run-4")
    _tick(setup)
    (hook,) = hooks.on("/hook/hook-secret-path")
    assert hook.body["items"][0]["failure_kind"] == "outage"


def test_a_channel_that_is_down_gets_its_alerts_later_and_once(
    setup: dict[str, Any], hooks: WebhookServer
) -> None:
    warehouse = setup["warehouse"]
    _tick(setup)
    hooks.answer("/slack/T000/B000/slack-secret-path", 500)
    hooks.answer("/teams/workflow-secret-path", 500)
    _fail(warehouse, "chat-1-0000aaaa", "failed", "the chat log is empty")
    _tick(setup)
    (teams,) = [r for r in warehouse.fetch_rows(tables.alert_outbox) if r["channel"] == "teams"]
    assert teams["last_error"].startswith("teams refused the card: no_service: POST <secret>")
    assert len(hooks.on("/slack/T000/B000/slack-secret-path")) == 0
    assert len(hooks.on("/hook/hook-secret-path")) == 1  # the others are not held up
    pending = [r for r in warehouse.fetch_rows(tables.alert_outbox) if r["channel"] == "slack"]
    assert [(r["status"], r["attempts"]) for r in pending] == [("pending", 1)]
    assert pending[0]["last_error"].startswith("slack answered 500")
    # The server echoed the request's path in its answer: not kept.
    assert "secret-path" not in pending[0]["last_error"]
    assert "<secret>" in pending[0]["last_error"]

    hooks.answer("/slack/T000/B000/slack-secret-path", 200)
    _tick(setup)
    assert len(hooks.on("/slack/T000/B000/slack-secret-path")) == 0  # backing off: 1 minute
    _backdate(warehouse, tables.alert_outbox, "last_attempt_at", seconds=61)
    _tick(setup)
    _tick(setup)
    assert len(hooks.on("/slack/T000/B000/slack-secret-path")) == 1
    assert len(hooks.on("/hook/hook-secret-path")) == 1


def test_an_unreachable_channel_error_never_shows_its_url(
    setup: dict[str, Any], hooks: WebhookServer
) -> None:
    warehouse = setup["warehouse"]
    _tick(setup)
    hooks.stop()  # connection refused on every channel
    _fail(warehouse, "chat-2-0000bbbb", "failed", "the chat log is empty")
    _tick(setup)
    rows = warehouse.fetch_rows(tables.alert_outbox)
    assert len(rows) == 3 and all(r["status"] == "pending" for r in rows)
    for row in rows:
        assert row["last_error"], row
        assert "secret-path" not in row["last_error"] and "127.0.0.1" not in row["last_error"]


def test_outages_of_the_llm_and_the_bucket_and_their_end(
    setup: dict[str, Any], hooks: WebhookServer
) -> None:
    warehouse = setup["warehouse"]
    health = warehouse.health
    _tick(setup)
    llm = "llm:gemini:gemini-2.5-flash"
    assert health.observe(llm, "open", healthy="closed", detail="Gemini HTTP 503 (4 attempts)")
    assert not health.observe(llm, "open", healthy="closed")  # only transitions are rows
    assert health.observe("bucket", "unreachable", healthy="reachable", detail="EndpointError")
    _tick(setup)
    kinds = [r.body["kind"] for r in hooks.on("/hook/hook-secret-path")]
    # The bucket has been unreachable for less than the grace (30 s): not told yet.
    assert kinds == ["llm_outage"]
    outage = hooks.on("/hook/hook-secret-path")[0].body["items"][0]
    assert outage["service"] == llm and outage["detail"] == "Gemini HTTP 503 (4 attempts)"

    _backdate(warehouse, tables.service_health, "occurred_at", seconds=60)  # down a minute
    _tick(setup)
    assert health.observe(llm, "closed", healthy="closed")
    assert health.observe("bucket", "reachable", healthy="reachable")
    _tick(setup)  # a recovery is told once it has held for a minute
    assert len(hooks.on("/hook/hook-secret-path")) == 2
    _backdate(warehouse, tables.service_health, "occurred_at", seconds=61)
    _tick(setup)
    _tick(setup)
    kinds = [r.body["kind"] for r in hooks.on("/hook/hook-secret-path")]
    assert kinds == ["llm_outage", "bucket_unreachable", "bucket_reachable", "llm_recovered"] or (
        kinds[:2] == ["llm_outage", "bucket_unreachable"]
        and sorted(kinds[2:]) == ["bucket_reachable", "llm_recovered"]
    )
    assert not health.observe("bucket", "reachable", healthy="reachable")


def test_a_blip_of_the_bucket_shorter_than_the_grace_is_not_told(
    setup: dict[str, Any], hooks: WebhookServer
) -> None:
    health = setup["warehouse"].health
    _tick(setup)
    health.observe("bucket", "unreachable", healthy="reachable", detail="timeout")
    _tick(setup)
    health.observe("bucket", "reachable", healthy="reachable")
    _tick(setup)
    assert hooks.received == []


def _queue_row(consultation_id: str, day: date, *, critical: bool, rank: int) -> dict[str, Any]:
    return {
        "day": day, "consultation_id": consultation_id, "rank": rank, "priority": 10.0,
        "reasons": "critical question failed: compliance" if critical else "low score 40",
        "failed_critical": critical, "overall_score": 35.0, "pass_state": "failed",
        "customer_sentiment_end": -0.4, "categories": None, "agent_id": "A-7", "team": "cards",
        "source_key": f"incoming/{consultation_id}.txt", "report_location": None,
        "computed_at": utcnow(),
    }  # fmt: skip


def test_failed_critical_questions_in_the_review_queue_are_told_once(
    setup: dict[str, Any], hooks: WebhookServer
) -> None:
    warehouse = setup["warehouse"]
    day = date(2026, 11, 20)
    _tick(setup)
    for consultation_id in ("rude-1111aaaa", "slow-2222bbbb", "older-3333cccc"):
        scored_at = utcnow() - timedelta(days=30 if consultation_id.startswith("older") else 0)
        warehouse.rows.write_many(tables.quality_metrics, [
            {"consultation_id": consultation_id, "prompt_version": "v1", "overall_score": 35.0,
             "created_at": scored_at},
        ])  # fmt: skip
    rows = [
        _queue_row("rude-1111aaaa", day, critical=True, rank=1),
        _queue_row("slow-2222bbbb", day, critical=False, rank=2),
        # Scored before alerting began (a backfill recomputing its day): history, not told.
        _queue_row("older-3333cccc", day, critical=True, rank=3),
    ]
    warehouse.aggregates.replace_days(tables.review_queue, [day], rows)
    _tick(setup)
    (hook,) = hooks.on("/hook/hook-secret-path")
    assert hook.body["kind"] == "critical_review"
    (item,) = hook.body["items"]
    assert item["consultation_id"] == "rude-1111aaaa" and item["agent_id"] == "A-7"
    assert item["reasons"] == "critical question failed: compliance"
    (slack,) = hooks.on("/slack/T000/B000/slack-secret-path")
    link = "http://dagster.example:3000/assets/quality_metrics?view=partitions&partition="
    assert link + "rude-1111aaaa" in slack.body["blocks"][1]["text"]["text"]
    # The day is recomputed (a late consultation): the same item is not told again.
    recomputed = [{**row, "computed_at": utcnow()} for row in rows]
    warehouse.aggregates.replace_days(tables.review_queue, [day], recomputed)
    _tick(setup)
    assert len(hooks.on("/hook/hook-secret-path")) == 1


def test_long_lists_are_cut_with_a_count() -> None:
    item = {"status": "failed", "stage": "transcript", "failure_kind": "input", "reason": "empty"}
    items = [{**item, "consultation_id": f"c-{n}", "run_id": None} for n in range(25)]
    message = compose(AlertKind.CONSULTATION_FAILED, items, "http://ui", max_lines=20)
    assert len(message.lines) == 20 and message.more == 5
    assert message.text.endswith("... and 5 more") and len(message.items) == 25


def test_without_a_channel_the_sensor_is_stopped_and_says_why(tmp_path: Path) -> None:
    settings = Settings(
        bucket_url=(tmp_path / "bucket").as_uri(),
        warehouse_url=f"sqlite:///{tmp_path / 'warehouse.db'}",
    )
    defs = build_defs(settings)
    sensor = defs.get_sensor_def("supervisor_alerts")
    assert sensor.default_status.value == "STOPPED"
    context = build_sensor_context(
        instance=DagsterInstance.ephemeral(), resources=build_resources(settings),
        definitions=defs,
    )  # fmt: skip
    result = sensor(context)
    assert isinstance(result, SkipReason) and "no alert channel" in (result.skip_message or "")
    assert json.loads(context.cursor or "null") is None


# ----------------------------------------------------------------- where health comes from


def test_the_bucket_sensor_records_an_unreachable_bucket_and_its_return(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cscoach_pipeline.defs.ingest.storage import S3Options
    from tests.support.backends import S3Backend
    from tests.support.pipeline import PipelineHarness
    from tests.support.s3_server import closed_port_endpoint, fresh_bucket

    harness = PipelineHarness(tmp_path, backend=S3Backend(fresh_bucket(s3_endpoint, monkeypatch)))
    health = harness.warehouse.health
    harness.tick()
    assert health.latest("bucket") is None  # reachable, and no history: no row
    down = S3Options(endpoint_url=closed_port_endpoint())
    with pytest.raises(Exception):  # noqa: B017 - the tick fails as the daemon shows it
        harness.tick(s3=down)
    latest = health.latest("bucket")
    assert latest is not None and latest["state"] == "unreachable"
    assert latest["detail"].startswith(("StorageError", "EndpointConnectionError")), latest
    harness.tick()
    assert health.latest("bucket")["state"] == "reachable"
    assert [r["state"] for r in harness.warehouse.fetch_rows(tables.service_health)] == [
        "unreachable", "reachable"
    ]  # fmt: skip


def test_the_analysis_records_the_breaker_opening_and_the_model_answering_again(
    tmp_path: Path,
) -> None:
    from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
    from cscoach_pipeline.resilience import reset_shared
    from tests.support.fake_gemini import FakeGemini, error, ok
    from tests.support.pipeline import PipelineHarness

    reset_shared()
    chat = b"Agent: Hello, Acme support, how can I help?\nCustomer: My card is lost.\n"
    with FakeGemini(api_key="k-alerts") as fake:
        fake.script(*[error(503, "UNAVAILABLE", "overloaded")] * 2)
        fake.set_default(ok())
        analyzer = AnalyzerResource(
            analyzer="gemini", api_key="k-alerts", base_url=fake.url, max_retries=1,
            backoff_base_s=0.01, breaker_failures=2, breaker_reset_s=0.2, breaker_successes=1,
        )  # fmt: skip
        harness = PipelineHarness(tmp_path, analyzer=analyzer)
        harness.drop("first.txt", chat)
        harness.process()
        health = harness.warehouse.health
        service = "llm:gemini:gemini-2.5-flash"
        opened = health.latest(service)
        assert opened is not None and opened["state"] == "open"
        assert "503" in (opened["detail"] or "")
        import time

        time.sleep(0.3)  # past the reset: the next request is the probe that closes it
        harness.drop("second.txt", chat + b"Agent: Let me block it now.\n")
        harness.process()
    assert [r["state"] for r in harness.warehouse.fetch_rows(tables.service_health)] == [
        "open", "closed"
    ]  # fmt: skip
    reset_shared()
