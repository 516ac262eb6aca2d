"""A Gemini outage under the real daemon, with the breaker and quota shared through Redis
(issue 9, point 4). Every consultation runs in its own run worker process, so a breaker per
process (the old design) would let every run make its four attempts; the shared one opens
after five failed requests across runs, and every later consultation falls back to local
rules (CSCOACH_GEMINI_FALLBACK=local-rules) without another request reaching Gemini."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from cscoach_pipeline.shared_limits import redis_client
from tests.support.daemon import deployment
from tests.support.fake_gemini import FakeGemini, error

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REDIS_URL = "redis://127.0.0.1:6379/14"
API_KEY = "test-key-shared-breaker"
CHATS = {
    f"chat-{index}.txt": (
        f"Agent: Hello, Acme support, this is call {index}. How can I help?\n"
        "Customer: My order has not arrived.\nAgent: I am sorry, it ships today.\n"
    )
    for index in range(5)
}


def test_the_breaker_opens_once_for_the_whole_deployment(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    try:
        client = redis_client(REDIS_URL)
        client.flushdb()
    except Exception as exc:  # pragma: no cover - the CI starts Redis
        pytest.skip(f"no Redis on 127.0.0.1:6379 ({exc})")
    with FakeGemini(api_key=API_KEY) as fake:
        fake.set_default(error(503, "UNAVAILABLE", "The model is overloaded."))
        env = {
            "GEMINI_API_KEY": API_KEY,
            "GOOGLE_GEMINI_BASE_URL": fake.url,
            "CSCOACH_REDIS_URL": REDIS_URL,
            "CSCOACH_GEMINI_FALLBACK": "local-rules",
        }
        with deployment(request, tmp_path, env=env) as d:
            for name, chat in CHATS.items():
                d.drop(name, chat)
            final = d.wait_for_final({d.source_key(name) for name in CHATS}, timeout=240)
            with d.engine.connect() as conn:
                analyses = [
                    dict(row._mapping)
                    for row in conn.execute(text("SELECT analyzer, fallback_reason FROM analyses"))
                ]
        generate = [r for r in fake.requests if "generateContent" in r.path]

    statuses = sorted(row["status"] for row in final.values())
    # The first consultation spends its four attempts (503 each) and fails; the fifth
    # failure, the next consultation's first attempt, opens the shared breaker.
    assert statuses == ["failed", "succeeded", "succeeded", "succeeded", "succeeded"]
    (failed,) = [row for row in final.values() if row["status"] == "failed"]
    assert "HTTP 503" in failed["error"] and "after 4 attempts" in failed["error"]
    assert len(generate) == 5
    assert len(analyses) == 4
    assert all(row["analyzer"] == "local-rules" for row in analyses)
    assert all("circuit breaker is open" in row["fallback_reason"] for row in analyses)
    assert client.hget("cscoach:breaker:gemini:gemini-2.5-flash", "state") == b"open"
    client.flushdb()
