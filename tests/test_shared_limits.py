"""One quota and one breaker for the deployment, in a real Redis on loopback, across real
processes: an outage seen by one process opens the breaker for every other; half-open lets
only the configured probes through, deployment-wide; three processes together never take
more than the requests-per-minute quota nor hold more than `max_concurrent` requests at once;
a Gemini analyzer configured with the URL fails fast without a request once the shared
breaker is open; an unreachable Redis is an outage (ConnectionError), never a bypass."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from cscoach_pipeline.resilience import BreakerState
from cscoach_pipeline.shared_limits import (
    RedisCircuitBreaker,
    RedisRateLimiter,
    redis_client,
    shared_breaker,
    shared_limiter,
)

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def name() -> Iterator[str]:
    try:
        redis_client(REDIS_URL).ping()
    except Exception as exc:  # pragma: no cover - the CI starts Redis
        pytest.skip(f"no Redis on 127.0.0.1:6379 ({exc})")
    unique = f"test-{uuid.uuid4().hex[:8]}"
    yield unique
    client = redis_client(REDIS_URL)
    for key in client.scan_iter(f"cscoach:*{unique}*"):
        client.delete(key)


def _in_another_process(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_an_outage_seen_by_one_process_opens_the_breaker_for_all(name: str) -> None:
    _in_another_process(
        "from cscoach_pipeline.shared_limits import shared_breaker\n"
        f"b = shared_breaker({REDIS_URL!r}, {name!r}, 3, 30.0, 2)\n"
        "for _ in range(3):\n    assert b.allow(); b.record_failure()\n"
    )
    here = shared_breaker(REDIS_URL, name, 3, 30.0, 2)
    assert here.state is BreakerState.OPEN
    assert not here.allow()
    error = here.open_error()
    assert error.consecutive_failures == 3 and 25 < error.retry_after_s <= 30


def test_half_open_lets_only_the_probes_through_deployment_wide(name: str) -> None:
    breaker = RedisCircuitBreaker(
        redis_client(REDIS_URL), name, failure_threshold=1, reset_timeout_s=0.3,
        success_threshold=2,
    )  # fmt: skip
    assert breaker.allow()
    breaker.record_failure()
    time.sleep(0.4)
    allowed_elsewhere = _in_another_process(
        "from cscoach_pipeline.shared_limits import shared_breaker\n"
        f"b = shared_breaker({REDIS_URL!r}, {name!r}, 1, 0.3, 2)\n"
        "print(sum(b.allow() for _ in range(5)))\n"
    )
    assert allowed_elsewhere == "2"  # the two probes, taken by the other process
    assert not breaker.allow()  # none left here
    breaker.record_success()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def _take(args: tuple[str, int, int, float]) -> tuple[int, int]:
    name, rpm, attempts, hold_s = args
    limiter = shared_limiter(REDIS_URL, name, rpm, 2)
    client = redis_client(REDIS_URL)
    taken, peak = 0, 0
    for _ in range(attempts):
        try:
            with limiter.acquire(timeout_s=0.3):
                now = client.incr(f"cscoach:test-inflight:{name}")
                peak = max(peak, now)
                time.sleep(hold_s)
                client.decr(f"cscoach:test-inflight:{name}")
                taken += 1
        except TimeoutError:
            pass
    return taken, peak


def test_three_processes_share_one_quota_and_two_slots(name: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        results = pool.map(_take, [(name, 30, 20, 0.05)] * 3)
    assert sum(taken for taken, _ in results) == 30  # the minute's quota, never above
    assert max(peak for _, peak in results) <= 2


def test_a_lease_of_a_killed_worker_expires(name: str) -> None:
    client = redis_client(REDIS_URL)
    limiter = RedisRateLimiter(client, name, 600, 1, lease_s=3)
    _in_another_process(  # takes the only slot and dies without giving it back
        "import os\nfrom cscoach_pipeline.shared_limits import RedisRateLimiter, redis_client\n"
        f"l = RedisRateLimiter(redis_client({REDIS_URL!r}), {name!r}, 600, 1, lease_s=3)\n"
        "held = l.acquire(timeout_s=1)\nheld.__enter__()\nos._exit(0)\n"
    )
    with pytest.raises(TimeoutError, match="concurrent slot"), limiter.acquire(timeout_s=0.1):
        pass
    with limiter.acquire(timeout_s=5):  # given back once the lease runs out
        pass


def test_an_open_shared_breaker_stops_gemini_requests(name: str) -> None:
    from cscoach_pipeline.defs.analysis.analyzers import AnalysisError
    from cscoach_pipeline.defs.analysis.prompts import load_prompt
    from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
    from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript
    from tests.support.fake_gemini import FakeGemini

    model = "gemini-2.5-flash"
    breaker = shared_breaker(REDIS_URL, f"gemini:{model}", 5, 60.0, 3)
    client = redis_client(REDIS_URL)
    client.delete(breaker.key)
    try:
        for _ in range(5):  # another worker saw five failures in a row
            breaker.record_failure()
        with FakeGemini(api_key="k") as fake:
            analyzer = AnalyzerResource(
                analyzer="gemini", api_key="k", base_url=fake.url, shared_limits_url=REDIS_URL
            )
            transcript = Transcript(
                source="text", segments=[Segment(speaker=Speaker.AGENT, text="Hello.")]
            )
            with pytest.raises(AnalysisError, match="circuit breaker is open"):
                analyzer.analyze(transcript, load_prompt("v1"))
            assert fake.requests == []
    finally:
        client.delete(breaker.key)


def test_an_unreachable_redis_is_an_outage(name: str) -> None:
    unreachable = "redis://127.0.0.1:1/0"
    with pytest.raises(ConnectionError, match="shared quota store"):
        shared_limiter(unreachable, name, 60, 1)
    breaker = RedisCircuitBreaker(redis_client(unreachable), name)
    with pytest.raises(ConnectionError, match="shared quota store"):
        breaker.allow()
