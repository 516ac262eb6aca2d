"""Process-wide protection for the LLM: a circuit breaker, a client-side rate limiter,
jittered exponential backoff and a registry that shares them across threads.

Why process-wide: Dagster runs steps in threads, and a backfill analyses many consultations
concurrently in one process. If each analysis had its own breaker, an outage would be
rediscovered (and hammered) by every thread; if each had its own limiter, the quota would be
multiplied by the number of threads. `shared_breaker` / `shared_limiter` hand every caller in
the process the same instance per name and settings.

- `CircuitBreaker`: closed -> open after N consecutive failures; open fails fast until a
  cool-down passes; half_open lets trial calls through and closes after M consecutive
  successes, or reopens on the first failure.
- `RateLimiter`: token bucket (smooth rate, small bursts) + a 60 s sliding window (hard cap of
  `requests_per_minute` in any 60 s window) + a bounded semaphore (concurrent requests).
- `backoff_delays`: exponential backoff with full jitter (AWS Architecture Blog, "Exponential
  Backoff And Jitter"), so retrying threads do not stampede in lockstep.

Stdlib only, all state guarded by locks, clocks and sleep injectable for deterministic tests.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any, TypedDict, TypeVar

__all__ = [
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "LimiterStats",
    "RateLimiter",
    "backoff_delays",
    "reset_shared",
    "shared_breaker",
    "shared_limiter",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")

Clock = Callable[[], float]
Sleep = Callable[[float], None]
StateChangeCallback = Callable[["BreakerState", "BreakerState"], None]

_WINDOW_S = 60.0
# Float slack when comparing a refilled token count with 1: (t + 0.1) - t can be 0.0999...
_TOKEN_EPSILON = 1e-9
# Never sleep less than this, so float rounding cannot make a waiter spin on ~0 s sleeps.
_MIN_SLEEP_S = 0.001


def _display_name(name: str) -> str:
    """Label for messages: gemini -> Gemini, gemini:flash-x -> Gemini (flash-x)."""
    head, _, tail = name.partition(":")
    head = head[:1].upper() + head[1:]
    return f"{head} ({tail})" if tail else head


# --------------------------------------------------------------------------- circuit breaker


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerSnapshot(TypedDict):
    state: str
    consecutive_failures: int
    consecutive_successes: int
    opened_at: float | None


class CircuitOpenError(Exception):
    """The breaker is open: the call was not attempted. Shown to users, so it reads plainly."""

    def __init__(
        self,
        retry_after_s: float,
        name: str = "gemini",
        consecutive_failures: int | None = None,
    ) -> None:
        self.retry_after_s = max(0.0, float(retry_after_s))
        self.name = name
        self.consecutive_failures = consecutive_failures
        after = (
            f" after {consecutive_failures} consecutive failures" if consecutive_failures else ""
        )
        super().__init__(
            f"{_display_name(name)} circuit breaker is open{after}; "
            f"retrying in {math.ceil(self.retry_after_s)} s"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Default exception pickling replays args (the message) into __init__, which would
        # be taken as retry_after_s; Dagster may pickle errors across process boundaries.
        return (type(self), (self.retry_after_s, self.name, self.consecutive_failures))


def _every_exception_is_failure(_exc: BaseException) -> bool:
    return True


class CircuitBreaker:
    """Thread-safe circuit breaker. See the module docstring for the state machine.

    `consecutive_successes` only counts trial successes while half-open (0 otherwise).
    `on_state_change(old, new)` is called after the internal lock is released, so a slow
    callback (e.g. Dagster logging to Postgres) never blocks other threads' calls; with
    concurrent callers, callbacks of different transitions may therefore interleave.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout_s: float = 60.0,
        success_threshold: int = 3,
        clock: Clock = time.monotonic,
        name: str = "gemini",
        on_state_change: StateChangeCallback | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if success_threshold < 1:
            raise ValueError(f"success_threshold must be >= 1, got {success_threshold}")
        if reset_timeout_s < 0:
            raise ValueError(f"reset_timeout_s must be >= 0, got {reset_timeout_s}")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = float(reset_timeout_s)
        self.success_threshold = success_threshold
        self.name = name
        self._clock = clock
        self._on_state_change = on_state_change
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._consecutive_successes = 0
        self._opened_at: float | None = None

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value!r})"

    # -- locked internals; each returns the transitions it made, fired after unlocking

    def _set_state_locked(
        self, new: BreakerState, changes: list[tuple[BreakerState, BreakerState]]
    ) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        if new is BreakerState.OPEN:
            self._opened_at = self._clock()
            self._consecutive_successes = 0
        elif new is BreakerState.HALF_OPEN:
            self._consecutive_successes = 0
        else:  # closed
            self._opened_at = None
            self._consecutive_failures = 0
            self._consecutive_successes = 0
        changes.append((old, new))

    def _refresh_locked(self, changes: list[tuple[BreakerState, BreakerState]]) -> None:
        # The open -> half_open move is lazy: it happens on the first look after the timeout.
        if (
            self._state is BreakerState.OPEN
            and self._opened_at is not None
            and self._clock() - self._opened_at >= self.reset_timeout_s
        ):
            self._set_state_locked(BreakerState.HALF_OPEN, changes)

    def _retry_after_locked(self) -> float:
        if self._state is not BreakerState.OPEN or self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.reset_timeout_s - self._clock())

    def _notify(self, changes: list[tuple[BreakerState, BreakerState]]) -> None:
        if self._on_state_change is None:
            return
        for old, new in changes:
            try:
                self._on_state_change(old, new)
            except Exception:
                # A broken logging callback must not break the protection itself.
                _log.exception("circuit breaker %s: on_state_change callback failed", self.name)

    # -- public API

    @property
    def state(self) -> BreakerState:
        changes: list[tuple[BreakerState, BreakerState]] = []
        with self._lock:
            self._refresh_locked(changes)
            state = self._state
        self._notify(changes)
        return state

    def allow(self) -> bool:
        """True if a call may go ahead (closed or half-open); False means fail fast."""
        return self.state is not BreakerState.OPEN

    def record_success(self) -> None:
        changes: list[tuple[BreakerState, BreakerState]] = []
        with self._lock:
            self._refresh_locked(changes)
            if self._state is BreakerState.CLOSED:
                self._consecutive_failures = 0
            elif self._state is BreakerState.HALF_OPEN:
                self._consecutive_successes += 1
                if self._consecutive_successes >= self.success_threshold:
                    self._set_state_locked(BreakerState.CLOSED, changes)
            # Open: a late success from a call started before the trip is ignored; only
            # trial calls after the cool-down decide whether the service has recovered.
        self._notify(changes)

    def record_failure(self) -> None:
        changes: list[tuple[BreakerState, BreakerState]] = []
        with self._lock:
            self._refresh_locked(changes)
            self._consecutive_failures += 1
            if self._state is BreakerState.HALF_OPEN:
                # The trial failed: the service is still unhealthy, start a new cool-down.
                self._set_state_locked(BreakerState.OPEN, changes)
            elif (
                self._state is BreakerState.CLOSED
                and self._consecutive_failures >= self.failure_threshold
            ):
                self._set_state_locked(BreakerState.OPEN, changes)
            # Open: counted, but the cool-down is not extended by stragglers.
        self._notify(changes)

    def retry_after_s(self) -> float:
        """Seconds until the breaker goes half-open; 0 if it is not open."""
        changes: list[tuple[BreakerState, BreakerState]] = []
        with self._lock:
            self._refresh_locked(changes)
            retry_after = self._retry_after_locked()
        self._notify(changes)
        return retry_after

    def open_error(self) -> CircuitOpenError:
        """A fully worded CircuitOpenError for the current state (failure count included)."""
        with self._lock:
            return CircuitOpenError(
                self._retry_after_locked(), self.name, self._consecutive_failures
            )

    def snapshot(self) -> BreakerSnapshot:
        changes: list[tuple[BreakerState, BreakerState]] = []
        with self._lock:
            self._refresh_locked(changes)
            snap = BreakerSnapshot(
                state=self._state.value,
                consecutive_failures=self._consecutive_failures,
                consecutive_successes=self._consecutive_successes,
                opened_at=self._opened_at,
            )
        self._notify(changes)
        return snap

    def call(
        self,
        fn: Callable[..., T],
        /,
        *args: Any,
        is_failure: Callable[[BaseException], bool] = _every_exception_is_failure,
        **kwargs: Any,
    ) -> T:
        """Run `fn(*args, **kwargs)` under the breaker.

        Raises CircuitOpenError without calling `fn` while open. An exception for which
        `is_failure` is False (e.g. HTTP 400: our request was bad, the service is fine) is
        re-raised without counting as a failure or resetting the failure count.
        KeyboardInterrupt/SystemExit pass through unrecorded.
        """
        if not self.allow():
            raise self.open_error()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            if is_failure(exc):
                self.record_failure()
            raise
        self.record_success()
        return result


# ------------------------------------------------------------------------------ rate limiter


class LimiterStats(TypedDict):
    granted: int
    timeouts: int
    total_wait_s: float
    in_flight: int


class RateLimiter:
    """Client-side quota keeper: requests per minute and concurrent requests.

    Three mechanisms, all must agree before a request goes out:
    - token bucket: refills at requests_per_minute / 60 per second, holds at most
      max(1, rate * burst_seconds) tokens -> smooth rate with small bursts;
    - sliding 60 s window of grant times: a bucket alone allows capacity + rpm per minute,
      the window makes "never more than requests_per_minute in any 60 s window" hold exactly;
    - bounded semaphore: at most max_concurrent requests in flight.

    The concurrency slot is taken before the token, so a request is sent right after its
    token is spent (tokens held while queueing for a slot would let sends bunch up).
    Waiters are not served in FIFO order.
    """

    def __init__(
        self,
        requests_per_minute: float,
        max_concurrent: int,
        *,
        burst_seconds: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        name: str = "gemini",
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError(f"requests_per_minute must be > 0, got {requests_per_minute}")
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        if burst_seconds <= 0:
            raise ValueError(f"burst_seconds must be > 0, got {burst_seconds}")
        self.requests_per_minute = float(requests_per_minute)
        self.max_concurrent = max_concurrent
        self.burst_seconds = float(burst_seconds)
        self.name = name
        self.rate_per_s = self.requests_per_minute / _WINDOW_S
        self.capacity = max(1.0, self.rate_per_s * self.burst_seconds)
        # At least one request per window, or a fractional rpm < 1 would never be granted
        # (the bucket still spaces those out to one per 60 / rpm seconds).
        self.window_limit = max(1, math.floor(self.requests_per_minute))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._tokens = self.capacity
        self._last_refill = clock()
        self._grants: deque[float] = deque()
        self._granted = 0
        self._timeouts = 0
        self._total_wait_s = 0.0
        self._in_flight = 0

    def __repr__(self) -> str:
        return (
            f"RateLimiter(name={self.name!r}, requests_per_minute={self.requests_per_minute:g}, "
            f"max_concurrent={self.max_concurrent})"
        )

    def _timeout_error(self, timeout_s: float, reason: str) -> TimeoutError:
        with self._lock:
            self._timeouts += 1
        return TimeoutError(
            f"{_display_name(self.name)} rate limiter: no request slot within {timeout_s:g} s "
            f"({reason}; limits: {self.requests_per_minute:g} requests/min, "
            f"{self.max_concurrent} concurrent)"
        )

    def _wait_needed_locked(self, now: float) -> float:
        """Refill the bucket, drop grants older than the window; 0 if a token can be taken."""
        elapsed = max(0.0, now - self._last_refill)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_s)
        self._last_refill = now
        while self._grants and now - self._grants[0] >= _WINDOW_S:
            self._grants.popleft()
        token_wait = (
            0.0 if self._tokens >= 1.0 - _TOKEN_EPSILON else (1.0 - self._tokens) / self.rate_per_s
        )
        # Written as 60 - age (not oldest + 60 - now) so it is > 0 exactly when the pruning
        # test above kept the oldest grant; the two forms can round differently.
        window_wait = (
            0.0 if len(self._grants) < self.window_limit else _WINDOW_S - (now - self._grants[0])
        )
        return max(token_wait, window_wait)

    def _take_token(self, started: float, deadline: float | None, timeout_s: float) -> None:
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed_locked(now)
                if wait <= 0:
                    self._tokens -= 1.0
                    self._grants.append(now)
                    self._granted += 1
                    self._total_wait_s += now - started
                    self._in_flight += 1
                    return
            # Tokens only ever arrive at the fixed rate, so if even the best case misses the
            # deadline, fail now instead of sleeping first.
            if deadline is not None and now + wait > deadline:
                raise self._timeout_error(timeout_s, f"quota exhausted for {wait:.2f} s")
            self._sleep(max(wait, _MIN_SLEEP_S))

    @contextlib.contextmanager
    def acquire(self, timeout_s: float | None = None) -> Iterator[None]:
        """Wait for a concurrency slot and a request token; hold the slot for the block.

        Raises TimeoutError if both cannot be had within `timeout_s` (None waits forever,
        0 only takes what is free right now).
        """
        started = self._clock()
        deadline = None if timeout_s is None else started + timeout_s
        if deadline is None:
            self._slots.acquire()
        elif not self._slots.acquire(timeout=max(0.0, deadline - self._clock())):
            raise self._timeout_error(
                timeout_s or 0.0, f"all {self.max_concurrent} concurrent slots busy"
            )
        try:
            self._take_token(started, deadline, timeout_s or 0.0)
        except BaseException:
            self._slots.release()
            raise
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
            self._slots.release()

    def stats(self) -> LimiterStats:
        with self._lock:
            return LimiterStats(
                granted=self._granted,
                timeouts=self._timeouts,
                total_wait_s=self._total_wait_s,
                in_flight=self._in_flight,
            )


# ----------------------------------------------------------------------------------- backoff


def backoff_delays(
    attempts: int, base_s: float, cap_s: float, rng: random.Random | None = None
) -> list[float]:
    """Delays before retries 1..attempts: delay_i = uniform(0, min(cap_s, base_s * 2**i)).

    Full jitter spreads retries of many threads hit by the same outage over the whole
    interval instead of having them all come back at the same instant.
    """
    if attempts < 0:
        raise ValueError(f"attempts must be >= 0, got {attempts}")
    if base_s < 0 or cap_s < 0:
        raise ValueError(f"base_s and cap_s must be >= 0, got {base_s} and {cap_s}")
    rng = rng or random.Random()
    # 2.0 ** 1024 raises OverflowError; base * 2.0 ** 1000 at worst becomes inf, capped below.
    return [rng.uniform(0.0, min(cap_s, base_s * 2.0 ** min(i, 1000))) for i in range(attempts)]


# ---------------------------------------------------------------------------------- registry

_registry_lock = threading.Lock()
_breakers: dict[tuple[Any, ...], CircuitBreaker] = {}
_limiters: dict[tuple[Any, ...], RateLimiter] = {}


def shared_breaker(
    name: str = "gemini",
    *,
    failure_threshold: int = 5,
    reset_timeout_s: float = 60.0,
    success_threshold: int = 3,
    clock: Clock = time.monotonic,
    on_state_change: StateChangeCallback | None = None,
) -> CircuitBreaker:
    """The process's breaker for this name and settings, created on first use.

    `on_state_change` is not part of the key (a fresh lambda per caller would otherwise
    silently give every caller its own breaker): the first caller's callback is kept.
    """
    key = (name, failure_threshold, float(reset_timeout_s), success_threshold, clock)
    with _registry_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                failure_threshold=failure_threshold,
                reset_timeout_s=reset_timeout_s,
                success_threshold=success_threshold,
                clock=clock,
                name=name,
                on_state_change=on_state_change,
            )
            _breakers[key] = breaker
        return breaker


def shared_limiter(
    name: str,
    requests_per_minute: float,
    max_concurrent: int,
    *,
    burst_seconds: float = 1.0,
) -> RateLimiter:
    """The process's rate limiter for this name and settings, created on first use."""
    key = (name, float(requests_per_minute), max_concurrent, float(burst_seconds))
    with _registry_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = RateLimiter(
                requests_per_minute, max_concurrent, burst_seconds=burst_seconds, name=name
            )
            _limiters[key] = limiter
        return limiter


def reset_shared() -> None:
    """Forget every shared breaker and limiter (tests; existing references keep working)."""
    with _registry_lock:
        _breakers.clear()
        _limiters.clear()
