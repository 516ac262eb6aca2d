"""How long a page takes in a real browser: headless Chromium driven over the DevTools protocol
(CDP) with the `websockets` package, no Node and no browser download.

`Chromium` starts `/usr/bin/chromium` (Debian package `chromium`) headless in its own process
group with a throw-away profile, and stops it again (Browser.close, then the group, then any
process left that carries its marker variable in its environment, such as the crash handlers,
which leave the group). `time_page` opens a URL in a fresh browser context (empty cache, cookies
and local storage) and measures, with the page's own clock (`performance.now()`, 0 = navigation
start):

- rendered: the first moment a JavaScript condition (a function of no arguments, given as
  source text, returning a short truthy description of what it found) holds; checked every
  100 ms by a timer the page runs, so a busy main thread delays the check as it delays the user;
- idle: after that, no data request (fetch, XHR, document) in flight for `quiet_s` and no long task
  (PerformanceObserver 'longtask', tasks over 50 ms) for `quiet_s`; reported as the end of the
  last long task (or the rendered moment, if later);
- long tasks from navigation to idle: total, count, longest; and the part of it after the
  last response of a given GraphQL operation (the Dagster UI adds `?op=Name` to each request);
- the GraphQL requests (operation, start, end as the page saw them) and, for the given data
  operation, the network stack's own time to the response headers (not delayed by a busy
  main thread) next to when the page's side saw the headers and the last byte;
  Chromium's Performance.getMetrics (ScriptDuration, TaskDuration, JSHeapUsedSize, ...) and a
  PNG screenshot.

A page that is not rendered (or not idle) by `timeout` seconds after navigation is reported as
such, with what was measured until then.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
MARKER_VAR = "CSCOACH_BENCH_CHROMIUM"  # in the environment of every process of one browser
INSTALL_HINT = "apt-get update && apt-get install -y chromium"


class BrowserUnavailable(RuntimeError):
    """No Chromium binary, or no `websockets` package to talk to it."""


def check_available(binary: Path = CHROMIUM) -> str:
    """The Chromium version string; raises BrowserUnavailable with what to install."""
    if not binary.exists():
        raise BrowserUnavailable(
            f"headless Chromium not found at {binary}: install the Debian package "
            f"(`{INSTALL_HINT}`) or pass --chromium PATH"
        )
    try:
        import websockets.sync.client  # noqa: F401
    except ImportError as exc:
        raise BrowserUnavailable(
            "the Python package `websockets` is missing: `.venv/bin/pip install websockets`"
        ) from exc
    out = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    return out.stdout.strip() or out.stderr.strip()


class CDPError(RuntimeError):
    pass


class _CDP:
    """One websocket to the browser; calls are synchronous, events go to listeners."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None, open_timeout=30, ping_interval=None)
        self.next_id = 0
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"CDP {method}: no answer within {timeout:.0f} s")
            try:
                raw = self.ws.recv(timeout=remaining)
            except TimeoutError:
                raise TimeoutError(f"CDP {method}: no answer within {timeout:.0f} s") from None
            reply = json.loads(raw)
            if reply.get("id") == ident:
                if "error" in reply:
                    raise CDPError(f"CDP {method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:  # an event; a late answer to an abandoned call is dropped
                for listener in self.listeners:
                    listener(reply)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()


class Chromium:
    """Headless Chromium with a temporary profile; a context manager."""

    def __init__(self, binary: Path = CHROMIUM, width: int = 1600, height: int = 1000) -> None:
        self.binary = binary
        self.width, self.height = width, height
        self.profile = Path(tempfile.mkdtemp(prefix="cscoach-bench-chromium-"))
        self.marker = f"{MARKER_VAR}={uuid.uuid4().hex}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.cdp: _CDP | None = None

    def __enter__(self) -> Chromium:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def start(self, timeout: float = 60) -> None:
        args = [
            str(self.binary),
            "--headless=new",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-background-timer-throttling",
            "--disable-backgrounding-occluded-windows",
            "--disable-renderer-backgrounding",
            "--disable-component-update",
            "--no-first-run",
            "--no-default-browser-check",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            f"--window-size={self.width},{self.height}",
        ]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        args.append("about:blank")
        log = (self.profile / "chromium.log").open("wb")
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, MARKER_VAR: self.marker.split("=", 1)[1]},
        )  # fmt: skip
        log.close()
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrowserUnavailable(f"Chromium exited at start:\n{self.log_tail()}")
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) >= 2:
                self.cdp = _CDP(f"ws://127.0.0.1:{lines[0]}{lines[1]}")
                return
            time.sleep(0.1)
        raise BrowserUnavailable(f"Chromium did not open DevTools in {timeout} s")

    def log_tail(self, lines: int = 30) -> str:
        path = self.profile / "chromium.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def version(self) -> str:
        assert self.cdp is not None
        return self.cdp.call("Browser.getVersion").get("product", "?")

    def pids(self) -> list[int]:
        """Every live process of this browser, including the crash handlers that leave its
        process group: they carry its marker in their environment."""
        needle = self.marker.encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if needle in (entry / "environ").read_bytes().split(b"\0"):
                        found.append(int(entry.name))
        return found

    def close(self) -> None:
        if self.cdp is not None:
            with contextlib.suppress(Exception):
                self.cdp.call("Browser.close", timeout=10)
            self.cdp.close()
            self.cdp = None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            for pid in self.pids():  # a helper that left the process group
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
            self.proc = None
        shutil.rmtree(self.profile, ignore_errors=True)


# The page side: installed before any of the page's own scripts run.
_INSTRUMENT = """
(() => {
  if (window.__bench) return;
  const B = window.__bench = {renderedAt: null, rendered: null, error: null, tasks: []};
  try { performance.setResourceTimingBufferSize(100000); } catch (e) {}
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) B.tasks.push([e.startTime, e.duration]);
    }).observe({type: 'longtask', buffered: true});
  } catch (e) { B.error = 'no longtask observer: ' + e; }
  const condition = (%s);
  const timer = setInterval(() => {
    if (!document.body) return;
    try {
      const found = condition();
      if (found) {
        B.renderedAt = performance.now();
        B.rendered = String(found);
        clearInterval(timer);
      }
    } catch (e) { B.error = String(e); }
  }, 100);
  B.state = () => {
    const graphql = performance.getEntriesByType('resource')
      .filter((e) => e.name.includes('/graphql'))
      .map((e) => {
        const m = e.name.match(/[?&]op=([^&]+)/);
        return [m ? decodeURIComponent(m[1]) : '?', e.startTime, e.responseEnd, e.transferSize];
      });
    return JSON.stringify({now: performance.now(), renderedAt: B.renderedAt,
                           rendered: B.rendered, error: B.error, tasks: B.tasks, graphql});
  };
})();
"""


def time_page(
    browser: Chromium,
    url: str,
    rendered_condition: str,
    *,
    timeout: float = 600,
    quiet_s: float = 3.0,
    idle_timeout: float = 180.0,
    observe_s: float = 20.0,
    data_operation: str | None = None,
    screenshot: Path | None = None,
) -> dict[str, Any]:
    """Open url in a fresh context and time it (see the module docstring). `data_operation`:
    a GraphQL operation whose last response before the rendered moment splits the time into
    waiting for data and work in the browser after it. The wait for idle ends at the timeout,
    or `idle_timeout` seconds after the rendered moment was seen, whichever is first. Once idle,
    the page is watched on until `observe_s` after the rendered moment (polling may refetch the
    data and redo the work): the long tasks after the idle moment are reported apart."""
    cdp = browser.cdp
    assert cdp is not None
    context = cdp.call("Target.createBrowserContext", {"disposeOnDetach": True})
    context_id = context["browserContextId"]
    target = cdp.call(
        "Target.createTarget",
        {"url": "about:blank", "browserContextId": context_id,
         "width": browser.width, "height": browser.height},
    )["targetId"]  # fmt: skip
    session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    inflight: dict[str, tuple[str, float]] = {}  # request id -> (url, sent at)
    network = {"changed": time.monotonic(), "requests": 0}

    # The data operation's requests: the network stack's own timing of the response headers
    # (response.timing, not held up by a busy main thread; the GraphQL result is computed by
    # then), and when the page's side saw the headers and the last byte (CDP event times,
    # which a busy renderer delays).
    data_requests: dict[str, dict[str, float]] = {}
    needle = f"op={data_operation}" if data_operation else None

    def on_event(message: dict[str, Any]) -> None:
        if message.get("sessionId") != session:
            return
        method, params = message["method"], message.get("params", {})
        request_id = params.get("requestId")
        if needle and method == "Network.requestWillBeSent":
            if needle in params.get("request", {}).get("url", ""):
                data_requests[request_id] = {"sent": params["timestamp"]}
        elif request_id in data_requests and method == "Network.responseReceived":
            data_requests[request_id]["headers"] = params["timestamp"]
            timing = params.get("response", {}).get("timing") or {}
            if "receiveHeadersEnd" in timing:
                data_requests[request_id]["stack_headers_s"] = timing["receiveHeadersEnd"] / 1000
        elif request_id in data_requests and method == "Network.loadingFinished":
            data_requests[request_id]["done"] = params["timestamp"]
            data_requests[request_id]["bytes"] = params.get("encodedDataLength", 0)
        if method == "Network.requestWillBeSent":
            # Data requests only: a script chunk asked for twice (preload, then the script)
            # may never get its loadingFinished.
            if params.get("type") in ("Fetch", "XHR", "Document"):
                inflight[params["requestId"]] = (params["request"]["url"], time.monotonic())
                network["requests"] += 1
                network["changed"] = time.monotonic()
        elif (
            method in ("Network.loadingFinished", "Network.loadingFailed")
            and params.get("requestId") in inflight
        ):
            inflight.pop(params["requestId"], None)
            network["changed"] = time.monotonic()

    cdp.listeners.append(on_event)
    result: dict[str, Any] = {"url": url}
    state: dict[str, Any] = {}
    try:
        for method, params in (
            ("Page.enable", {}),
            ("Network.enable", {}),
            ("Performance.enable", {}),
            ("Emulation.setDeviceMetricsOverride",
             {"width": browser.width, "height": browser.height, "deviceScaleFactor": 1,
              "mobile": False}),
            ("Page.addScriptToEvaluateOnNewDocument",
             {"source": _INSTRUMENT % rendered_condition}),
        ):  # fmt: skip
            cdp.call(method, params, session)
        started = time.monotonic()
        deadline = started + timeout
        cdp.call("Page.navigate", {"url": url}, session, timeout=timeout)
        idle_state: dict[str, Any] | None = None  # the page's state when first seen idle
        seen_rendered: float | None = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if (
                seen_rendered is not None
                and idle_state is None
                and now > seen_rendered + idle_timeout
            ):
                break
            if idle_state is not None and now >= seen_rendered + observe_s:
                break
            asked = time.monotonic()
            try:
                reply = cdp.call(
                    "Runtime.evaluate",
                    {"expression": "window.__bench ? window.__bench.state() : null",
                     "returnByValue": True},
                    session,
                    timeout=max(1.0, deadline - asked),
                )  # fmt: skip
            except TimeoutError:
                break  # the main thread stayed busy past the deadline
            except CDPError as exc:  # e.g. the renderer crashed (out of memory)
                result["cdp_error"] = str(exc)[:300]
                break
            answered = time.monotonic()
            value = reply.get("result", {}).get("value")
            if value:
                state = json.loads(value)
            if state.get("renderedAt") is not None and idle_state is None:
                seen_rendered = seen_rendered or answered
                tasks = state.get("tasks", [])
                last_task_end = max((s + d for s, d in tasks), default=0.0)
                quiet_tasks = state["now"] - max(last_task_end, state["renderedAt"])
                quiet_network = answered - network["changed"] if not inflight else 0.0
                if (
                    quiet_tasks >= quiet_s * 1000
                    and quiet_network >= quiet_s
                    and answered - asked < 0.5  # the page answered at once: not busy
                ):
                    idle_state = state
            time.sleep(0.25)
        result.update(
            _summary(idle_state or state, idle_state is not None, timeout, data_operation)
        )
        if idle_state is not None:
            result.update(_after_idle(state, result["idle_s"], data_operation))
        result["wall_s"] = round(time.monotonic() - started, 2)
        result["requests"] = network["requests"]
        if data_operation:
            result[f"network_{data_operation}"] = [
                {
                    "network_stack_to_headers_s": round(r["stack_headers_s"], 2)
                    if "stack_headers_s" in r
                    else None,
                    "page_seen_headers_s": round(r["headers"] - r["sent"], 2)
                    if "headers" in r
                    else None,
                    "page_seen_last_byte_s": round(r["done"] - r["sent"], 2)
                    if "done" in r
                    else None,
                    "mb": round(r.get("bytes", 0) / 1e6, 2),
                }
                for r in data_requests.values()
            ]
        result["in_flight_at_end"] = [url[:200] for url, _ in inflight.values()]
        with contextlib.suppress(TimeoutError, CDPError):
            metrics = cdp.call("Performance.getMetrics", {}, session, timeout=30)["metrics"]
            wanted = ("ScriptDuration", "TaskDuration", "LayoutDuration", "RecalcStyleDuration")
            values = {m["name"]: m["value"] for m in metrics}
            result["chromium_metrics"] = {k: round(values[k], 2) for k in wanted if k in values}
            result["chromium_metrics"]["JSHeapUsedMB"] = round(
                values.get("JSHeapUsedSize", 0) / 1e6, 1
            )
            result["chromium_metrics"]["Nodes"] = int(values.get("Nodes", 0))
        if screenshot is not None:
            try:
                shot = cdp.call("Page.captureScreenshot", {"format": "png"}, session, timeout=60)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                result["screenshot"] = str(screenshot)
            except (TimeoutError, CDPError) as exc:
                result["screenshot_error"] = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        cdp.listeners.remove(on_event)
        with contextlib.suppress(Exception):
            cdp.call("Target.closeTarget", {"targetId": target}, timeout=30)
        with contextlib.suppress(Exception):
            cdp.call("Target.disposeBrowserContext", {"browserContextId": context_id}, timeout=30)
    return result


def _after_idle(state: dict[str, Any], idle_s: float, data_operation: str | None) -> dict[str, Any]:
    """What happened after the idle moment, until the page was left."""
    since = idle_s * 1000
    later = [(s, d) for s, d in state.get("tasks", []) if s >= since]
    out: dict[str, Any] = {
        "watched_until_s": round(state.get("now", 0) / 1000, 2),
        "after_idle_long_tasks": len(later),
        "after_idle_long_task_total_s": round(sum(d for _, d in later) / 1000, 2),
        "after_idle_long_task_max_s": round(max((d for _, d in later), default=0) / 1000, 2),
    }
    if data_operation:
        out[f"after_idle_{data_operation}_requests"] = sum(
            1
            for op, begin, _f, _s in state.get("graphql", [])
            if op == data_operation and begin >= since
        )
    return out


def _summary(
    state: dict[str, Any], idle: bool, timeout: float, data_operation: str | None
) -> dict[str, Any]:
    """The figures, in seconds from navigation start, from the page's last reported state."""
    rendered_at = state.get("renderedAt")
    tasks = sorted(state.get("tasks", []))
    out: dict[str, Any] = {
        "rendered": rendered_at is not None,
        "idle": idle,
        "rendered_s": round(rendered_at / 1000, 2) if rendered_at is not None else None,
        "rendered_what": state.get("rendered"),
        "page_error": state.get("error"),
        "observed_until_s": round(state.get("now", 0) / 1000, 2),
    }
    if rendered_at is None:
        out["rendered_s_display"] = f"> {timeout:.0f}"
    end = max([rendered_at or 0.0] + [s + d for s, d in tasks]) if idle else state.get("now", 0)
    out["idle_s"] = round(end / 1000, 2) if idle else None
    counted = [(s, d) for s, d in tasks if s < end]
    out["long_tasks"] = len(counted)
    out["long_task_total_s"] = round(sum(d for _, d in counted) / 1000, 2)
    out["long_task_max_s"] = round(max((d for _, d in counted), default=0) / 1000, 2)
    graphql = state.get("graphql", [])
    by_op: dict[str, list[list[float]]] = {}
    for op, begin, finish, _size in graphql:
        by_op.setdefault(op, []).append([round(begin / 1000, 2), round(finish / 1000, 2)])
    out["graphql_requests"] = by_op
    if data_operation and by_op.get(data_operation):
        limit = rendered_at if rendered_at is not None else state.get("now", 0)
        ends = [f for op, _b, f, _s in graphql if op == data_operation and f <= limit]
        if ends:
            data_at = max(ends)
            out[f"last_{data_operation}_response_s"] = round(data_at / 1000, 2)
            if rendered_at is not None:
                out["rendered_after_data_s"] = round((rendered_at - data_at) / 1000, 2)
            out["long_task_after_data_s"] = round(
                sum(max(0.0, min(s + d, end) - max(s, data_at)) for s, d in counted) / 1000, 2
            )
    return out
