"""Proves the LLM protection in `cscoach_pipeline.resilience` behaves as specified.

Circuit breaker: opens after exactly 5 consecutive failures (a success in between resets the
count), fails fast while open with a correct retry-after and a readable error, goes half-open
after the 60 s cool-down, closes after 3 trial successes, reopens on a trial failure, ignores
exceptions that say nothing about the service's health (e.g. HTTP 400), wraps calls with
`call()`, reports transitions to a callback, and loses no update under many threads.

Rate limiter: at 600 requests/min it grants at most 600 in any 60 s window and about 10 per
second steadily, allows a burst of 10, never exceeds the concurrency limit (real threads),
and raises a readable TimeoutError when the timeout passes. Backoff delays stay within their
exponential bounds, are capped and jittered. The registry shares one instance per name and
settings.

Everything runs on a fake clock except the small real-thread tests, which do not sleep longer
than a few tens of milliseconds.
"""

from __future__ import annotations

import bisect
import itertools
import pickle
import random
import threading

import pytest

from cscoach_pipeline.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    RateLimiter,
    backoff_delays,
    reset_shared,
    shared_breaker,
    shared_limiter,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class FakeClock:
    """A monotonic clock that only moves when told to; `sleep` advances it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds

    advance = sleep


class ServiceDown(Exception):
    pass


class BadRequest(Exception):
    pass


@pytest.fixture(autouse=True)
def _fresh_registry() -> None:
    reset_shared()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _breaker(clock: FakeClock, **kwargs) -> CircuitBreaker:
    return CircuitBreaker(clock=clock, **kwargs)


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_failure()


def _open_breaker(clock: FakeClock, **kwargs) -> CircuitBreaker:
    breaker = _breaker(clock, **kwargs)
    _fail(breaker, breaker.failure_threshold)
    assert breaker.state is OPEN
    return breaker


def _raise(exc: BaseException) -> None:
    raise exc


# ------------------------------------------------------------------------------- breaker


def test_opens_after_exactly_five_consecutive_failures(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    _fail(breaker, 4)
    assert breaker.state is CLOSED and breaker.allow()
    breaker.record_success()  # resets the consecutive count
    assert breaker.snapshot()["consecutive_failures"] == 0
    _fail(breaker, 4)
    assert breaker.state is CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is OPEN
    assert breaker.snapshot() == {
        "state": "open",
        "consecutive_failures": 5,
        "consecutive_successes": 0,
        "opened_at": 1000.0,
    }


def test_fails_fast_while_open_with_retry_after(clock: FakeClock) -> None:
    breaker = _open_breaker(clock)
    assert not breaker.allow()
    assert breaker.retry_after_s() == pytest.approx(60.0)
    clock.advance(18)
    assert breaker.retry_after_s() == pytest.approx(42.0)

    calls: list[int] = []
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(calls.append, 1)
    assert calls == []  # never attempted
    assert info.value.retry_after_s == pytest.approx(42.0)
    assert str(info.value) == (
        "Gemini circuit breaker is open after 5 consecutive failures; retrying in 42 s"
    )
    # Failing fast does not extend the cool-down.
    assert breaker.snapshot()["opened_at"] == 1000.0


def test_circuit_open_error_wording_and_pickling() -> None:
    bare = CircuitOpenError(41.2)
    assert str(bare) == "Gemini circuit breaker is open; retrying in 42 s"
    named = CircuitOpenError(3, "gemini:gemini-2.5-flash", 7)
    assert str(named) == (
        "Gemini (gemini-2.5-flash) circuit breaker is open after 7 consecutive failures; "
        "retrying in 3 s"
    )
    copy = pickle.loads(pickle.dumps(named))
    assert isinstance(copy, CircuitOpenError)
    assert (str(copy), copy.retry_after_s, copy.name, copy.consecutive_failures) == (
        str(named),
        3.0,
        "gemini:gemini-2.5-flash",
        7,
    )


def test_goes_half_open_after_reset_timeout(clock: FakeClock) -> None:
    breaker = _open_breaker(clock)
    clock.advance(59.9)
    assert breaker.state is OPEN and not breaker.allow()
    clock.advance(0.1)
    assert breaker.state is HALF_OPEN
    assert breaker.allow()
    assert breaker.retry_after_s() == 0.0


def test_half_open_closes_after_three_successes(clock: FakeClock) -> None:
    breaker = _open_breaker(clock)
    clock.advance(60)
    breaker.record_success()
    breaker.record_success()
    assert breaker.state is HALF_OPEN
    assert breaker.snapshot()["consecutive_successes"] == 2
    breaker.record_success()
    assert breaker.state is CLOSED
    assert breaker.snapshot() == {
        "state": "closed",
        "consecutive_failures": 0,
        "consecutive_successes": 0,
        "opened_at": None,
    }
    # Fully closed again: it takes 5 new failures to trip.
    _fail(breaker, 4)
    assert breaker.state is CLOSED


def test_half_open_failure_reopens_with_new_cool_down(clock: FakeClock) -> None:
    breaker = _open_breaker(clock)
    clock.advance(75)
    assert breaker.state is HALF_OPEN
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is OPEN
    assert breaker.snapshot()["opened_at"] == 1075.0
    assert breaker.retry_after_s() == pytest.approx(60.0)
    clock.advance(60)
    assert breaker.state is HALF_OPEN
    assert breaker.snapshot()["consecutive_successes"] == 0


def test_late_success_while_open_does_not_close(clock: FakeClock) -> None:
    breaker = _open_breaker(clock)
    breaker.record_success()  # a call started before the trip, finishing late
    assert breaker.state is OPEN
    assert breaker.snapshot()["consecutive_failures"] == 5


def test_non_failure_exceptions_neither_count_nor_reset(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    only_outages = lambda exc: not isinstance(exc, BadRequest)  # noqa: E731
    for _ in range(4):
        with pytest.raises(ServiceDown):
            breaker.call(_raise, ServiceDown(), is_failure=only_outages)
    for _ in range(3):
        with pytest.raises(BadRequest):
            breaker.call(_raise, BadRequest(), is_failure=only_outages)
    assert breaker.state is CLOSED
    assert breaker.snapshot()["consecutive_failures"] == 4  # not counted, not reset
    with pytest.raises(ServiceDown):
        breaker.call(_raise, ServiceDown(), is_failure=only_outages)
    assert breaker.state is OPEN

    # Half-open: a bad request is not a trial success either.
    clock.advance(60)
    with pytest.raises(BadRequest):
        breaker.call(_raise, BadRequest(), is_failure=only_outages)
    assert breaker.snapshot()["state"] == "half_open"
    assert breaker.snapshot()["consecutive_successes"] == 0


def test_call_passes_arguments_returns_and_reraises(clock: FakeClock) -> None:
    breaker = _breaker(clock)

    def add(a: int, b: int, *, scale: int = 1) -> int:
        return (a + b) * scale

    _fail(breaker, 4)
    assert breaker.call(add, 2, 3, scale=10) == 50
    assert breaker.snapshot()["consecutive_failures"] == 0  # success recorded

    boom = ServiceDown("503")
    with pytest.raises(ServiceDown) as info:
        breaker.call(_raise, boom)
    assert info.value is boom  # the very same exception, re-raised
    assert breaker.snapshot()["consecutive_failures"] == 1


def test_call_lets_keyboard_interrupt_through_unrecorded(clock: FakeClock) -> None:
    breaker = _breaker(clock)
    with pytest.raises(KeyboardInterrupt):
        breaker.call(_raise, KeyboardInterrupt())
    assert breaker.snapshot()["consecutive_failures"] == 0


def test_state_change_callback(clock: FakeClock) -> None:
    seen: list[tuple[BreakerState, BreakerState]] = []
    breaker = _breaker(clock, on_state_change=lambda old, new: seen.append((old, new)))
    _fail(breaker, 5)
    clock.advance(60)
    assert breaker.allow()
    breaker.record_failure()
    clock.advance(60)
    for _ in range(3):
        breaker.record_success()
    assert seen == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


def test_broken_callback_does_not_break_the_breaker(clock: FakeClock) -> None:
    def broken(old: BreakerState, new: BreakerState) -> None:
        raise RuntimeError("log handler down")

    breaker = _breaker(clock, on_state_change=broken)
    _fail(breaker, 5)
    assert breaker.state is OPEN


def test_callback_may_read_the_breaker(clock: FakeClock) -> None:
    # Called outside the lock: reading the breaker from the callback must not deadlock.
    snaps: list[str] = []
    breaker = _breaker(clock, on_state_change=lambda old, new: snaps.append(breaker.state))
    _fail(breaker, 5)
    assert snaps == ["open"]


def test_thread_safety_under_concurrent_records(clock: FakeClock) -> None:
    seen: list[tuple[BreakerState, BreakerState]] = []
    lock = threading.Lock()

    def on_change(old: BreakerState, new: BreakerState) -> None:
        with lock:
            seen.append((old, new))

    threads_n, per_thread = 16, 500
    counting = _breaker(clock, failure_threshold=10**9)
    tripping = _breaker(clock, failure_threshold=1000, on_state_change=on_change)
    start = threading.Barrier(threads_n)

    def hammer() -> None:
        start.wait()
        for _ in range(per_thread):
            counting.record_failure()
            tripping.record_failure()

    threads = [threading.Thread(target=hammer) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # No lost update, and the breaker tripped exactly once.
    assert counting.snapshot()["consecutive_failures"] == threads_n * per_thread
    assert counting.state is CLOSED
    assert tripping.state is OPEN
    assert tripping.snapshot()["consecutive_failures"] == threads_n * per_thread
    assert seen == [(CLOSED, OPEN)]

    # Half-open under concurrent successes: closes exactly once.
    clock.advance(60)
    start = threading.Barrier(threads_n)

    def succeed() -> None:
        start.wait()
        for _ in range(50):
            tripping.record_success()

    threads = [threading.Thread(target=succeed) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tripping.state is CLOSED
    assert seen == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_breaker_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(success_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(reset_timeout_s=-1)


# ---------------------------------------------------------------------------- rate limiter


def _limiter(clock: FakeClock, rpm: float = 600, max_concurrent: int = 100, **kw) -> RateLimiter:
    return RateLimiter(rpm, max_concurrent, clock=clock, sleep=clock.sleep, **kw)


def _grant_times(limiter: RateLimiter, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        with limiter.acquire():
            times.append(clock())
    return times


def test_never_more_than_rpm_in_any_60_s_window(clock: FakeClock) -> None:
    limiter = _limiter(clock, rpm=600)
    times = _grant_times(limiter, clock, 2000)
    # Any 601 consecutive grants span at least 60 s <=> every [t, t + 60) holds <= 600.
    assert min(times[i + 600] - times[i] for i in range(len(times) - 600)) >= 60.0
    assert max(bisect.bisect_left(times, t + 60.0) - i for i, t in enumerate(times)) == 600
    # ...and the limit is used: the first minute holds all 600.
    assert bisect.bisect_left(times, times[0] + 60.0) == 600


def test_steady_rate_is_about_ten_per_second(clock: FakeClock) -> None:
    limiter = _limiter(clock, rpm=600)
    times = _grant_times(limiter, clock, 1200)
    start = times[0]
    in_40_s = bisect.bisect_left(times, start + 50) - bisect.bisect_left(times, start + 10)
    assert 399 <= in_40_s <= 401
    gaps = [b - a for a, b in itertools.pairwise(times[10:591])]
    assert all(gap == pytest.approx(0.1, abs=0.002) for gap in gaps)
    # Over two minutes the average is ~10/s (1200 grants in ~120 s).
    assert times[-1] - start == pytest.approx(119.9, abs=1.0)


def test_burst_capacity(clock: FakeClock) -> None:
    limiter = _limiter(clock, rpm=600)
    assert limiter.capacity == 10
    burst = _grant_times(limiter, clock, 10)
    assert burst == [1000.0] * 10  # ten at once, no waiting
    assert limiter.stats()["total_wait_s"] == 0.0
    (eleventh,) = _grant_times(limiter, clock, 1)
    assert eleventh == pytest.approx(1000.1)
    stats = limiter.stats()
    assert stats["granted"] == 11
    assert stats["total_wait_s"] == pytest.approx(0.1)
    assert stats["in_flight"] == 0

    assert _limiter(clock, rpm=600, burst_seconds=2).capacity == 20
    assert _limiter(clock, rpm=30).capacity == 1  # never below one request


def test_idle_time_refills_only_up_to_capacity(clock: FakeClock) -> None:
    limiter = _limiter(clock, rpm=600)
    _grant_times(limiter, clock, 10)
    clock.advance(3600)  # an idle hour does not bank 36,000 requests
    times = _grant_times(limiter, clock, 11)
    assert times[:10] == [times[0]] * 10
    assert times[10] == pytest.approx(times[0] + 0.1)


def test_fractional_low_rate(clock: FakeClock) -> None:
    limiter = _limiter(clock, rpm=0.5)  # one request every two minutes
    times = _grant_times(limiter, clock, 3)
    assert [t - times[0] for t in times] == pytest.approx([0.0, 120.0, 240.0], abs=0.01)


def test_acquire_timeout_on_quota(clock: FakeClock) -> None:
    limiter = _limiter(clock, rpm=600)
    _grant_times(limiter, clock, 10)
    with pytest.raises(TimeoutError) as info, limiter.acquire(timeout_s=0.05):
        pytest.fail("must not run")
    message = str(info.value)
    assert message.startswith("Gemini rate limiter: no request slot within 0.05 s")
    assert "600 requests/min" in message
    assert limiter.stats()["timeouts"] == 1
    # The concurrency slot was given back: a later acquire still works.
    with limiter.acquire(timeout_s=0.1):
        pass
    assert limiter.stats()["granted"] == 11


def test_acquire_timeout_on_concurrency(clock: FakeClock) -> None:
    limiter = _limiter(clock, rpm=600, max_concurrent=1)
    busy = pytest.raises(TimeoutError, match="all 1 concurrent slots busy")
    with limiter.acquire(), busy, limiter.acquire(timeout_s=0):
        pytest.fail("must not run")
    with limiter.acquire(timeout_s=0):  # released on exit
        pass


def test_slot_released_when_body_raises(clock: FakeClock) -> None:
    limiter = _limiter(clock, rpm=600, max_concurrent=1)
    with pytest.raises(ServiceDown), limiter.acquire():
        raise ServiceDown
    assert limiter.stats()["in_flight"] == 0
    with limiter.acquire(timeout_s=0):
        pass


def test_concurrency_limit_never_exceeded_real_threads() -> None:
    limiter = RateLimiter(requests_per_minute=60_000, max_concurrent=3)
    lock = threading.Lock()
    active = peak = 0
    workers = 12
    start = threading.Barrier(workers)
    hold = threading.Event()

    def work() -> None:
        nonlocal active, peak
        start.wait()
        with limiter.acquire(timeout_s=5):
            with lock:
                active += 1
                peak = max(peak, active)
            hold.wait(0.02)  # keep the slot a moment so the others pile up
            with lock:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert peak == 3
    assert limiter.stats()["granted"] == workers
    assert limiter.stats()["in_flight"] == 0


def test_limiter_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, 1)
    with pytest.raises(ValueError):
        RateLimiter(60, 0)
    with pytest.raises(ValueError):
        RateLimiter(60, 1, burst_seconds=0)


# --------------------------------------------------------------------------------- backoff


def test_backoff_delays_within_exponential_bounds_and_capped() -> None:
    rng = random.Random(7)
    for _ in range(200):
        delays = backoff_delays(8, base_s=0.5, cap_s=10.0, rng=rng)
        assert len(delays) == 8
        for i, delay in enumerate(delays):
            assert 0.0 <= delay <= min(10.0, 0.5 * 2**i)
    # Late attempts are capped, yet the cap is actually reached (full range is used).
    samples = [backoff_delays(8, 0.5, 10.0, rng)[-1] for _ in range(500)]
    assert max(samples) <= 10.0
    assert max(samples) > 9.0


def test_backoff_delays_are_jittered_and_reproducible() -> None:
    delays = backoff_delays(6, base_s=1.0, cap_s=1.0, rng=random.Random(1))
    assert len(set(delays)) == 6  # same bound for every attempt, still all different
    assert delays == backoff_delays(6, 1.0, 1.0, random.Random(1))
    assert backoff_delays(3, 1.0, 1.0) != backoff_delays(3, 1.0, 1.0)  # default rng varies


def test_backoff_edge_cases() -> None:
    assert backoff_delays(0, 1.0, 10.0) == []
    assert max(backoff_delays(2000, 1.0, 30.0, random.Random(3))) <= 30.0  # no overflow
    with pytest.raises(ValueError):
        backoff_delays(-1, 1.0, 10.0)


# -------------------------------------------------------------------------------- registry


def test_shared_breaker_one_instance_per_name_and_settings() -> None:
    a = shared_breaker("gemini:flash", failure_threshold=5, reset_timeout_s=60)
    assert shared_breaker("gemini:flash") is a  # same effective settings (defaults)
    assert shared_breaker("gemini:flash", on_state_change=print) is a  # callback not a key
    assert shared_breaker("gemini:pro") is not a
    assert shared_breaker("gemini:flash", failure_threshold=3) is not a
    assert a.name == "gemini:flash"


def test_shared_limiter_one_instance_per_name_and_settings() -> None:
    a = shared_limiter("gemini:flash", 600, 4)
    assert shared_limiter("gemini:flash", 600.0, 4) is a
    assert shared_limiter("gemini:pro", 600, 4) is not a
    assert shared_limiter("gemini:flash", 60, 4) is not a
    assert shared_limiter("gemini:flash", 600, 2) is not a


def test_reset_shared_forgets_instances() -> None:
    breaker, limiter = shared_breaker("x"), shared_limiter("x", 60, 1)
    reset_shared()
    assert shared_breaker("x") is not breaker
    assert shared_limiter("x", 60, 1) is not limiter


def test_registry_is_thread_safe() -> None:
    n = 16
    start = threading.Barrier(n)
    got: list[object] = []

    def fetch() -> None:
        start.wait()
        got.append(shared_breaker("gemini:race"))
        got.append(shared_limiter("gemini:race", 60, 2))

    threads = [threading.Thread(target=fetch) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(x) for x in got}) == 2
