"""A small fake of the Gemini REST API (``generateContent``) for tests.

The real ``google-genai`` client talks to it over HTTP, so everything above the network
boundary (request building, headers, error mapping, response parsing) is the real code. Point
a client at it with ``GeminiAnalyzer(api_key, model, base_url=fake.url)`` or
``AnalyzerResource(base_url=fake.url, ...)``.

google-genai 3.x sends ``POST /{api_version}/models/{model}:generateContent`` (``v1`` by
default, ``v1beta`` when asked) with the key in the ``x-goog-api-key`` header and a camelCase
JSON body (``contents``, ``systemInstruction``, ``generationConfig``). Both versions are served.

Every request is recorded (:class:`RecordedRequest`). Answers come, in this order, from:

1. the checks the real API makes first: an unknown model -> 404 ``NOT_FOUND``, a missing or
   wrong API key (when the fake was given one) -> 403 / 400;
2. the script: replies queued with :meth:`FakeGemini.script`, one per request;
3. rules added with :meth:`FakeGemini.respond_when` (a predicate on the request);
4. the default responder: a valid, deterministic analysis (summary
   :data:`FAKE_SUMMARY`), replaceable with :meth:`FakeGemini.set_default`.

Replies are built with :func:`ok`, :func:`error`, :func:`delay`, :func:`blocked`,
:func:`truncated`, :func:`no_candidates` and :func:`finished_without_text`.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from cscoach_pipeline.defs.analysis.schema import RUBRIC_CRITERIA, ConsultationAnalysis

FAKE_SUMMARY = "FAKE-GEMINI summary"
DEFAULT_KNOWN_MODELS = frozenset(
    {"gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash"}
)
_PATH = re.compile(r"^/(?P<version>v1|v1beta)/models/(?P<model>[^/:?]+):generateContent$")
_MODEL_PATH = re.compile(r"^/(?P<version>v1|v1beta)/models/(?P<model>[^/:?]+)(?:\?.*)?$")


def valid_analysis(**overrides: Any) -> dict[str, Any]:
    """A deterministic analysis dict that validates as ConsultationAnalysis; top-level keys
    can be overridden (e.g. ``rubric=...``)."""
    data: dict[str, Any] = {
        "summary": FAKE_SUMMARY,
        "customer_intent": "check the status of an order",
        "issue": "the order has not arrived",
        "resolution_status": "resolved",
        "customer_sentiment": {"start": "negative", "end": "positive"},
        "agent_strengths": ["apologised for the delay"],
        "improvement_points": [
            {"point": "confirm the next steps at the end", "evidence_quote": ""}
        ],
        "coaching_tips": ["recap the resolution before closing"],
        "rubric": {name: {"score": 4, "reason": f"fake {name} reason"} for name in RUBRIC_CRITERIA},
    }
    data.update(overrides)
    return data


def valid_analysis_json(**overrides: Any) -> str:
    """:func:`valid_analysis` as the JSON text Gemini would return."""
    text = json.dumps(valid_analysis(**overrides), ensure_ascii=False)
    if not overrides:
        ConsultationAnalysis.model_validate_json(text)  # the default must stay valid
    return text


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer. ``body=None`` with status 200 means "the default answer"."""

    status: int
    body: dict[str, Any] | None
    delay_s: float = 0.0


def ok(json_text: str | None = None, prompt_tokens: int = 120, output_tokens: int = 80) -> Reply:
    """A successful GenerateContentResponse whose text is ``json_text`` (default: a valid
    analysis)."""
    text = valid_analysis_json() if json_text is None else json_text
    return Reply(200, _answer(text, "STOP", prompt_tokens, output_tokens))


def error(status: int, status_name: str, message: str) -> Reply:
    """The Google error envelope, e.g. ``error(429, "RESOURCE_EXHAUSTED", "Quota exceeded")``."""
    return Reply(status, {"error": {"code": status, "message": message, "status": status_name}})


def delay(seconds: float, then: Reply | None = None) -> Reply:
    """Wait ``seconds`` before answering ``then`` (default: the default answer)."""
    reply = then or Reply(200, None)
    return replace(reply, delay_s=seconds)


def blocked(reason: str = "SAFETY") -> Reply:
    """The prompt was blocked: ``promptFeedback.blockReason`` and no candidates."""
    return Reply(
        200,
        {
            "promptFeedback": {"blockReason": reason},
            "usageMetadata": {"promptTokenCount": 120, "totalTokenCount": 120},
        },
    )


def truncated(json_text: str | None = None) -> Reply:
    """Output cut by the token limit: ``finishReason: MAX_TOKENS`` with half of the JSON."""
    text = valid_analysis_json() if json_text is None else json_text
    return Reply(200, _answer(text[: len(text) // 2], "MAX_TOKENS", 120, 8192))


def no_candidates() -> Reply:
    """An answer with an empty candidate list and no block reason."""
    return Reply(200, {"candidates": [], "usageMetadata": {"promptTokenCount": 120}})


def finished_without_text(reason: str = "SAFETY") -> Reply:
    """A candidate that stopped (e.g. SAFETY, RECITATION) before producing any content."""
    return Reply(200, {"candidates": [{"finishReason": reason, "index": 0}]})


def _answer(text: str, finish: str, prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": finish,
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens,
        },
    }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    raw_body: str
    body: Any  # parsed JSON, None if the body was not JSON

    @property
    def model(self) -> str | None:
        match = _PATH.match(self.path)
        return match["model"] if match else None

    @property
    def prompt_text(self) -> str:
        """The text of every part of every ``contents`` entry."""
        return "\n".join(_texts((self.body or {}).get("contents", [])))

    @property
    def system_text(self) -> str:
        return "\n".join(_texts([(self.body or {}).get("systemInstruction") or {}]))

    @property
    def generation_config(self) -> dict[str, Any]:
        return (self.body or {}).get("generationConfig") or {}


def _texts(contents: Iterable[dict[str, Any]]) -> list[str]:
    return [p["text"] for c in contents for p in c.get("parts", []) if "text" in p]


Responder = Callable[[RecordedRequest], Reply]


def default_responder(request: RecordedRequest) -> Reply:
    """A valid analysis; token counts derived from the sizes so they are deterministic."""
    text = valid_analysis_json()
    return ok(text, prompt_tokens=max(1, len(request.raw_body) // 4), output_tokens=len(text) // 4)


@dataclass
class FakeGemini:
    """``with FakeGemini() as fake: ...`` serves on 127.0.0.1 at a free port (``fake.url``)."""

    known_models: frozenset[str] = DEFAULT_KNOWN_MODELS
    api_key: str | None = None  # when set, requests must carry it like the real API demands
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._rules: list[tuple[Callable[[RecordedRequest], bool], Reply]] = []
        self._default: Responder = default_responder
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting --------------------------------------------------------------------------

    def script(self, *replies: Reply) -> FakeGemini:
        """Queue replies; each request consumes one, in order."""
        with self._lock:
            self._queue.extend(replies)
        return self

    def respond_when(self, predicate: Callable[[RecordedRequest], bool], reply: Reply) -> None:
        """Answer ``reply`` to every request matching ``predicate`` once the script is used up."""
        with self._lock:
            self._rules.append((predicate, reply))

    def set_default(self, reply: Reply | Responder) -> None:
        """Replace the default answer (a Reply for every request, or a function of it)."""
        self._default = reply if callable(reply) else (lambda _request: reply)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def bodies_text(self) -> str:
        """Every raw request body received, joined: for "never sent" assertions."""
        with self._lock:
            return "\n".join(r.raw_body for r in self.requests)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeGemini is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGemini:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # delayed handlers wake on stop, nothing to join
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # stop() returns within one interval
            name="fake-gemini",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGemini:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode("utf-8", errors="replace") if length else ""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        request = RecordedRequest(
            method=handler.command,
            path=handler.path,
            headers={k.lower(): v for k, v in handler.headers.items()},
            raw_body=raw,
            body=body,
        )
        with self._lock:
            self.requests.append(request)
        reply = self._reply_for(request)
        if reply.delay_s and self._stopping.wait(reply.delay_s):
            return  # shutting down: drop the connection
        status, payload = reply.status, reply.body
        if status == 200 and payload is None:
            default = self._default(request)
            status, payload = default.status, default.body
        if status == 200 and payload is not None and "modelVersion" not in payload:
            payload = {**payload, "modelVersion": request.model, "responseId": "fake-response"}
        data = json.dumps(payload).encode("utf-8")
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=UTF-8")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to answer

    def _reply_for(self, request: RecordedRequest) -> Reply:
        model_get = _MODEL_PATH.match(request.path) if request.method == "GET" else None
        if model_get is not None:  # models.get: how the client checks a model exists
            if model_get["model"] not in self.known_models:
                return error(404, "NOT_FOUND", f"models/{model_get['model']} is not found")
            return Reply(
                status=200,
                body={
                    "name": f"models/{model_get['model']}",
                    "displayName": model_get["model"],
                    "inputTokenLimit": 1048576,
                    "outputTokenLimit": 65536,
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                },
            )
        match = _PATH.match(request.path) if request.method == "POST" else None
        if match is None:
            return error(404, "NOT_FOUND", f"unknown endpoint {request.method} {request.path}")
        if match["model"] not in self.known_models:
            return error(
                404,
                "NOT_FOUND",
                f"models/{match['model']} is not found for API version {match['version']}, "
                "or is not supported for generateContent. Call ListModels to see the list of "
                "available models and their supported methods.",
            )
        if self.api_key is not None:
            sent = request.headers.get("x-goog-api-key")
            if not sent:
                return error(
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without established "
                    "identity). Please use API Key or other form of API consumer identity.",
                )
            if sent != self.api_key:
                return error(
                    400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
                )
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            rules = list(self._rules)
        for predicate, reply in rules:
            if predicate(request):
                return reply
        return self._default(request)
