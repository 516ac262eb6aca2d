"""One LLM quota and one circuit breaker for the whole deployment, kept in Redis, so every
process on every machine (run workers, backfill threads, future Celery workers) spends from
the same requests-per-minute budget, holds at most `max_concurrent` requests in flight
together, and sees the same health of the service.

- `RedisRateLimiter`: requests per minute through pyrate-limiter's `RedisBucket` (a sliding
  60 s log in a Redis sorted set), plus a concurrency semaphore: leases in a sorted set that
  expire, so a worker killed mid-request gives its slot back after `lease_s`.
- `RedisCircuitBreaker`: the same state machine as `resilience.CircuitBreaker` (closed ->
  open after N consecutive failures, half-open after the cool-down, closed after M trial
  successes), but half-open lets only M probes through at a time, deployment-wide: during an
  outage the service sees the probes and nothing more. Redis's own clock is used, so
  machines with skewed clocks agree.

Every transition is one Lua script, atomic on the Redis server. A Redis outage surfaces as
`ConnectionError` (an outage: the step is retried later), never as a silent bypass.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from cscoach_pipeline.resilience import BreakerState, CircuitOpenError

_PREFIX = "cscoach:"

# KEYS[1] breaker hash. ARGV: failure_threshold, reset_timeout_s, success_threshold.
# Returns {allowed (0/1), retry_after_ms, consecutive_failures}.
_ALLOW = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if state == 'open' then
  local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
  local wait = opened + tonumber(ARGV[2]) * 1000 - now
  if wait > 0 then return {0, wait, failures} end
  state = 'half_open'
  redis.call('HSET', KEYS[1], 'state', state, 'successes', 0, 'probes', 0)
end
if state == 'half_open' then
  local probes = tonumber(redis.call('HGET', KEYS[1], 'probes') or '0')
  if probes >= tonumber(ARGV[3]) then return {0, 1000, failures} end
  redis.call('HINCRBY', KEYS[1], 'probes', 1)
end
return {1, 0, failures}
"""

# KEYS[1] breaker hash. ARGV: outcome ('success'|'failure'), failure_threshold,
# success_threshold. Returns the state after the call.
_RECORD = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'half_open' then
  local probes = tonumber(redis.call('HGET', KEYS[1], 'probes') or '0')
  if probes > 0 then redis.call('HINCRBY', KEYS[1], 'probes', -1) end
end
if ARGV[1] == 'success' then
  if state == 'closed' then
    redis.call('HSET', KEYS[1], 'failures', 0)
  elseif state == 'half_open' then
    local ok = redis.call('HINCRBY', KEYS[1], 'successes', 1)
    if ok >= tonumber(ARGV[3]) then
      redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'successes', 0, 'probes', 0)
      state = 'closed'
    end
  end
else
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if state == 'half_open' or (state == 'closed' and failures >= tonumber(ARGV[2])) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'successes', 0, 'probes', 0)
    state = 'open'
  end
end
return state
"""

# KEYS[1] lease set. ARGV: limit, lease_ms, lease id. Returns 1 when the lease was granted.
_LEASE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"""


def _redis_errors() -> tuple[type[Exception], ...]:
    from redis.exceptions import RedisError

    return (RedisError,)


def _unreachable(exc: Exception) -> ConnectionError:
    return ConnectionError(f"the shared quota store (Redis) is unreachable: {exc}")


class RedisCircuitBreaker:
    """Deployment-wide circuit breaker; the interface the analyzers use of CircuitBreaker."""

    def __init__(
        self,
        client: Any,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_timeout_s: float = 60.0,
        success_threshold: int = 3,
    ) -> None:
        self.name = name
        self.key = f"{_PREFIX}breaker:{name}"
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.success_threshold = success_threshold
        self._client = client
        self._allow = client.register_script(_ALLOW)
        self._record = client.register_script(_RECORD)
        self._last: tuple[int, int] = (0, 0)  # (retry_after_ms, failures) of the last refusal

    def allow(self) -> bool:
        try:
            allowed, retry_ms, failures = self._allow(
                keys=[self.key],
                args=[self.failure_threshold, self.reset_timeout_s, self.success_threshold],
            )
        except _redis_errors() as exc:
            raise _unreachable(exc) from None
        self._last = (int(retry_ms), int(failures))
        return bool(allowed)

    def _record_outcome(self, outcome: str) -> BreakerState:
        try:
            state = self._record(
                keys=[self.key], args=[outcome, self.failure_threshold, self.success_threshold]
            )
        except _redis_errors() as exc:
            raise _unreachable(exc) from None
        return BreakerState(state.decode() if isinstance(state, bytes) else state)

    def record_success(self) -> None:
        self._record_outcome("success")

    def record_failure(self) -> None:
        self._record_outcome("failure")

    def open_error(self) -> CircuitOpenError:
        retry_ms, failures = self._last
        return CircuitOpenError(retry_ms / 1000, self.name, failures)

    @property
    def state(self) -> BreakerState:
        try:
            raw = self._client.hget(self.key, "state")
        except _redis_errors() as exc:
            raise _unreachable(exc) from None
        return BreakerState((raw.decode() if isinstance(raw, bytes) else raw) or "closed")


WINDOW_MARGIN_MS = 1000


class RedisRateLimiter:
    """Deployment-wide quota: requests per minute and requests in flight."""

    def __init__(
        self,
        client: Any,
        name: str,
        requests_per_minute: float,
        max_concurrent: int,
        *,
        lease_s: float = 300.0,
        poll_s: float = 0.05,
    ) -> None:
        from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

        if requests_per_minute <= 0 or max_concurrent < 1:
            raise ValueError("requests_per_minute must be > 0 and max_concurrent >= 1")
        self.name = name
        self.requests_per_minute = requests_per_minute
        self.max_concurrent = max_concurrent
        self.lease_ms = int(lease_s * 1000)
        self.poll_s = poll_s
        self._leases_key = f"{_PREFIX}inflight:{name}"
        self._lease = client.register_script(_LEASE)
        self._client = client
        # A window a second wider than the minute: a request admitted exactly 60 s after an
        # earlier one can reach the server tens of milliseconds sooner, relative to it, than
        # that one did, and the server would count both in one minute.
        rate = Rate(max(1, int(requests_per_minute)), Duration.MINUTE + WINDOW_MARGIN_MS)
        bucket = RedisBucket.init([rate], client, f"{_PREFIX}rpm:{name}")
        self._limiter = Limiter(bucket)
        # pyrate-limiter's Limiter is not documented as thread-safe: one caller at a time.
        self._lock = threading.Lock()

    def _try_lease(self, lease_id: str) -> bool:
        try:
            return bool(
                self._lease(
                    keys=[self._leases_key], args=[self.max_concurrent, self.lease_ms, lease_id]
                )
            )
        except _redis_errors() as exc:
            raise _unreachable(exc) from None

    def _try_quota(self) -> bool:
        try:
            with self._lock:
                return bool(self._limiter.try_acquire(self.name, blocking=False))
        except _redis_errors() as exc:
            raise _unreachable(exc) from None

    @contextlib.contextmanager
    def acquire(self, timeout_s: float | None = None) -> Iterator[None]:
        """Wait for a slot in flight and a request from the minute's quota (both shared by
        the deployment); TimeoutError when `timeout_s` passes first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        lease_id = uuid.uuid4().hex
        while not self._try_lease(lease_id):
            self._wait(deadline, "every concurrent slot is taken")
        try:
            while not self._try_quota():
                self._wait(deadline, "the requests-per-minute quota is spent")
            yield
        finally:
            with contextlib.suppress(*_redis_errors()):
                self._client.zrem(self._leases_key, lease_id)

    def _wait(self, deadline: float | None, reason: str) -> None:
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"shared quota {self.name!r}: {reason}")
        time.sleep(self.poll_s)


@lru_cache(maxsize=8)
def redis_client(url: str) -> Any:
    """One connection pool per URL per process."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


@lru_cache(maxsize=16)
def shared_breaker(
    url: str, name: str, failure_threshold: int, reset_timeout_s: float, success_threshold: int
) -> RedisCircuitBreaker:
    return RedisCircuitBreaker(
        redis_client(url),
        name,
        failure_threshold=failure_threshold,
        reset_timeout_s=reset_timeout_s,
        success_threshold=success_threshold,
    )


@lru_cache(maxsize=16)
def shared_limiter(
    url: str, name: str, requests_per_minute: float, max_concurrent: int
) -> RedisRateLimiter:
    try:  # pyrate-limiter loads its scripts into Redis here
        return RedisRateLimiter(redis_client(url), name, requests_per_minute, max_concurrent)
    except _redis_errors() as exc:
        raise _unreachable(exc) from None
