"""Alerts and supervisor context under the real daemon: the sensors run in `dagster-daemon`,
each consultation in its own run worker, and the alerts reach a local webhook server.

- offline: a corrupt recording whose name holds a phone number fails on its own; its run
  carries the readable reason as the `cscoach/failure` tag, and the alert says why with the
  number redacted; a rude chat of agent A-9 (team cards) runs with `cscoach/agent_id` and
  `cscoach/team` tags, lands in the review queue with its failed critical question (the
  daily_aggregates sensor's refresh), and that is alerted too; no alert holds the number,
  the customer's words or the agent's name;
- Gemini outage: with the breaker shared through Redis, the outage opens it (one alert) and
  the model answering again after the reset closes it (a second alert).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cscoach_pipeline.defs.ingest.partition_keys import display_key
from cscoach_pipeline.shared_limits import redis_client
from tests.support.daemon import deployment
from tests.support.evaluation import EVALUATION_SET
from tests.support.fake_gemini import FakeGemini, error, ok
from tests.support.webhook_server import WebhookServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

PHONE = "010-9876-5432"
HOOK = "/hook/secret-path-d41d8cd9"


def _case_chat(case_id: str) -> str:
    import yaml

    cases = yaml.safe_load(EVALUATION_SET.read_text(encoding="utf-8"))["cases"]
    (case,) = [c for c in cases if c["id"] == case_id]
    names = {"A": "Agent", "C": "Customer"}
    return "".join(f"{names[s]}: {t}\n" for s, t in case["turns"])


def _kinds(hooks: WebhookServer) -> list[str]:
    return [r.body["kind"] for r in hooks.on(HOOK)]


def test_failures_and_critical_reviews_reach_the_webhook_with_their_context(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with WebhookServer() as hooks:
        env = {
            "CSCOACH_ALERT_WEBHOOK_URL": hooks.url(HOOK),
            "CSCOACH_ALERT_INTERVAL_S": "2",
            "CSCOACH_AGGREGATES_INTERVAL_S": "2",
        }
        with deployment(request, tmp_path, env=env) as d:
            corrupt = f"call {PHONE}.wav"
            d.drop(corrupt, b"RIFF\x00\x00\x00\x00WAVEfmt this is not audio at all" * 20)
            rude = _case_chat("en-02-rude-refund")
            sidecar = {
                "agent_id": "A-9", "agent_name": "Dana Whitfield", "team": "cards",
                "recorded_at": "2026-11-20T10:00:00+00:00",
            }  # fmt: skip
            d.drop("rude.txt.meta.json", json.dumps(sidecar))
            d.drop("rude.txt", rude)
            # Tables and statuses show the key with the number redacted.
            shown = display_key(d.source_key(corrupt))
            final = d.wait_for_final({shown, d.source_key("rude.txt")}, 180)
            d.wait_for(
                lambda: {"consultation_failed", "critical_review"} <= set(_kinds(hooks)),
                timeout=120,
            )
            runs = {next(iter(r.consultations)): r for r in d.runs()}
            text = hooks.all_text()

    failed = final[shown]
    assert failed["status"] == "failed" and failed["stage"] == "consultation_audio"
    corrupt_run = runs[failed["consultation_id"]]
    assert corrupt_run.tags["cscoach/failure"].startswith("consultation_audio: ")
    assert PHONE not in corrupt_run.tags["cscoach/failure"]

    rude_id = final[d.source_key("rude.txt")]["consultation_id"]
    rude_run = runs[rude_id]
    assert rude_run.tags["cscoach/agent_id"] == "A-9" and rude_run.tags["cscoach/team"] == "cards"

    (failures,) = [r.body for r in hooks.on(HOOK) if r.body["kind"] == "consultation_failed"]
    (item,) = failures["items"]
    assert item["consultation_id"] == failed["consultation_id"]
    assert item["reason"] and item["reason"] == failed["error"].splitlines()[0][:300]
    reviews = [r.body for r in hooks.on(HOOK) if r.body["kind"] == "critical_review"]
    (review,) = [i for body in reviews for i in body["items"]]
    assert review["consultation_id"] == rude_id and review["agent_id"] == "A-9"
    assert review["day"] == "2026-11-20"
    assert review["reasons"].startswith("critical question failed: compliance")

    assert PHONE not in text and "9876" not in text
    assert "Dana Whitfield" not in text
    customer_words = [
        line.split(": ", 1)[1] for line in rude.splitlines() if line.startswith("Customer")
    ]
    assert not any(words[:40] in text for words in customer_words)


BREAKER_RESET_S = 10


def test_a_gemini_outage_opens_the_breaker_and_its_end_closes_it(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = "redis://127.0.0.1:6379/13"
    try:
        client = redis_client(url)
        client.flushdb()
    except Exception as exc:  # pragma: no cover - the CI starts Redis
        pytest.skip(f"no Redis on 127.0.0.1:6379 ({exc})")
    chat = "Agent: Hello, Acme support, how can I help?\nCustomer: My card is lost.\n"
    with WebhookServer() as hooks, FakeGemini(api_key="k-outage") as fake:
        fake.script(*[error(503, "UNAVAILABLE", "The model is overloaded.")] * 2)
        fake.set_default(ok())
        env = {
            "GEMINI_API_KEY": "k-outage",
            "GOOGLE_GEMINI_BASE_URL": fake.url,
            "CSCOACH_REDIS_URL": url,
            "CSCOACH_GEMINI_FALLBACK": "local-rules",
            "CSCOACH_GEMINI_BREAKER_FAILURES": "2",
            # Longer than any retry's jittered wait (at most 4 s after the second failure):
            # the first call's next attempt is refused and falls back with the breaker open,
            # never rides out the outage in a half-open retry (told as no outage at all).
            "CSCOACH_GEMINI_BREAKER_RESET_S": str(BREAKER_RESET_S),
            "CSCOACH_GEMINI_BREAKER_SUCCESSES": "1",
            "CSCOACH_ALERT_WEBHOOK_URL": hooks.url(HOOK),
            "CSCOACH_ALERT_INTERVAL_S": "2",
            "CSCOACH_ALERT_RECOVERED_GRACE_S": "3",
        }
        with deployment(request, tmp_path, env=env) as d:
            d.drop("first.txt", chat)
            d.wait_for_final({d.source_key("first.txt")}, 120)
            d.wait_for(lambda: "llm_outage" in _kinds(hooks), timeout=60)
            time.sleep(BREAKER_RESET_S)  # the next call finds the breaker half-open
            d.drop("second.txt", chat + "Agent: I have blocked it.\n")
            final = d.wait_for_final({d.source_key("second.txt")}, 120)
            d.wait_for(lambda: "llm_recovered" in _kinds(hooks), timeout=60)
    client.flushdb()

    assert final[d.source_key("second.txt")]["status"] == "succeeded"
    assert _kinds(hooks) == ["llm_outage", "llm_recovered"]
    (outage,) = hooks.on(HOOK)[0].body["items"]
    assert outage["service"] == "llm:gemini:gemini-2.5-flash" and outage["state"] == "open"
    assert "k-outage" not in hooks.all_text()
