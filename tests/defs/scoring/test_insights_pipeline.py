"""Proves categories and sentiment through the real pipeline (sensor, dynamic partition,
process job), on a spoken call and on typed chats, with only Gemini's HTTP server faked:

- a generated stereo call that resolves after a hold: every transcript segment gets a
  sentiment with its label and source, the customer's moves from negative to positive (per
  turn and per quarter in `quality_metrics`), and `category_matches` holds the complaint,
  the repeat contact, the long hold (at the time the hold began) and the compliment with
  their evidence, as do the coaching report and the `call_categories` materialization;
- a Korean chat fires Korean categories, and a negated cancellation fires nothing;
- with prompt v4 Gemini's per-turn scores are stored (`sentiment_source = model`), segments
  it skipped get the lexicon's, and a reanalysis with another prompt version keeps both
  versions' matches.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey

from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.defs.warehouse import tables
from tests.support.fake_gemini import FakeGemini, RecordedRequest, ok, valid_analysis_json
from tests.support.media_factory import Line, dialogue_tracks, write_wav
from tests.support.pipeline import PipelineHarness

pytestmark = pytest.mark.integration

HOLD_S = 65.0
RESOLVING_CALL = [
    Line("agent", "Thank you for calling Acme support, my name is Sarah. How can I help?"),
    Line("customer", "This is ridiculous. My internet is down again and I am really "
                     "frustrated. This is the third time I have called."),
    Line("agent", "I am sorry about that. Let me check your line, please hold."),
    Line("agent", "Thank you for holding. I found the fault and reset your connection."),
    Line("customer", "It works now. That is great, thank you so much, you have been very "
                     "helpful."),
    Line("agent", "You are welcome. Have a lovely day."),
]  # fmt: skip


@pytest.fixture(scope="module")
def resolving_call(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resolving-call")
    agent, customer = dialogue_tracks(RESOLVING_CALL, root / "lines", pauses={2: HOLD_S})
    return write_wav(root / "resolving_call.wav", [agent, customer])


def test_a_resolving_call_with_a_hold(tmp_path: Path, resolving_call: Path) -> None:
    harness = PipelineHarness(root=tmp_path / "run")
    harness.drop("resolving_call.wav", resolving_call)
    ((key, result),) = harness.process().items()
    assert result.success

    segments = sorted(
        harness.warehouse.fetch_rows(tables.transcript_segments, consultation_id=key),
        key=lambda r: r["segment_index"],
    )
    assert segments and all(r["sentiment"] is not None for r in segments)
    assert {r["sentiment_source"] for r in segments} == {"lexicon"}
    assert all(-1 <= r["sentiment"] <= 1 for r in segments)
    customer = [r for r in segments if r["speaker"] == "customer"]
    assert customer[0]["sentiment"] < 0 and customer[0]["sentiment_label"] == "negative"
    assert customer[-1]["sentiment"] > 0.5 and customer[-1]["sentiment_label"] == "positive"

    (metrics,) = harness.warehouse.fetch_rows(tables.quality_metrics, consultation_id=key)
    assert metrics["customer_sentiment_q1"] < 0 < metrics["customer_sentiment_q4"]
    assert metrics["customer_sentiment"] is not None and metrics["agent_sentiment"] is not None

    matches = {
        r["category_id"]: r
        for r in harness.warehouse.fetch_rows(tables.category_matches, consultation_id=key)
    }
    assert {"complaint", "repeat_contact", "long_hold", "compliment"} <= set(matches)
    assert "greeting_missing" not in matches and "cancellation_intent" not in matches
    hold = matches["long_hold"]
    hold_before = next(r for r in segments if "hold" in r["text"].lower())
    assert hold["segment_index"] == hold_before["segment_index"]
    assert hold["start_s"] == pytest.approx(hold_before["end_s"], abs=0.01)
    assert hold["evidence"].endswith(f"with nobody talking from {hold['start_s']:.0f} s")
    complaint = matches["complaint"]
    assert complaint["evidence"].startswith('customer: "') and "ridiculous" in complaint["evidence"]
    assert complaint["start_s"] == customer[0]["start_s"]
    assert {r["category_version"] for r in matches.values()} == {"v1"}
    assert {r["prompt_version"] for r in matches.values()} == {"v1"}

    report = harness.artifact(key, "report.md").decode()
    assert "## Categories" in report and "**Long hold** (medium) at" in report

    event = harness.instance.get_latest_materialization_event(AssetKey("call_categories"))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert "long_hold" in metadata["categories"].value
    assert metadata["categories_fired"].value == len(matches)
    quality = harness.instance.get_latest_materialization_event(AssetKey("quality_metrics"))
    assert quality is not None and quality.asset_materialization is not None
    arc = quality.asset_materialization.metadata["customer_sentiment_by_quarter"].value
    assert arc.startswith("-")
    # The coaching report is readable in the UI, not only a path.
    shown = quality.asset_materialization.metadata["coaching_report"].value
    assert shown == report


KOREAN_CHAT = (
    "상담원: 안녕하세요, 고객센터 상담원 김민지입니다.\n"
    "고객: 인터넷이 또 끊겼어요. 몇 번이나 전화했는지 몰라요. 정말 짜증나요.\n"
    "상담원: 불편을 드려 죄송합니다. 바로 확인하겠습니다.\n"
    "고객: 해지하고 싶어요. 책임자 바꿔 주세요.\n"
).encode()
NEGATED_CHAT = (
    b"Agent: Hello, thanks for contacting Acme. How can I help?\n"
    b"Customer: I don't want to cancel my plan, I only need a cheaper one.\n"
    b"Agent: Sure, I have moved you to the basic plan.\n"
    b"Customer: Perfect, thank you so much.\n"
)


def test_korean_chat_and_a_negated_cancellation(tmp_path: Path) -> None:
    harness = PipelineHarness(root=tmp_path / "run")
    harness.drop("korean.txt", KOREAN_CHAT)
    harness.drop("negated.txt", NEGATED_CHAT)
    results = harness.process()
    assert len(results) == 2 and all(r.success for r in results.values())
    by_key = {
        key: {r["category_id"] for r in harness.warehouse.fetch_rows(
            tables.category_matches, consultation_id=key)}
        for key in results
    }  # fmt: skip
    korean = next(k for k in results if "korean" in k)
    negated = next(k for k in results if "negated" in k)
    assert {"repeat_contact", "complaint", "cancellation_intent", "escalation_request"} <= by_key[
        korean
    ]
    assert "greeting_missing" not in by_key[korean]
    assert "cancellation_intent" not in by_key[negated]
    segments = harness.warehouse.fetch_rows(tables.transcript_segments, consultation_id=korean)
    first_customer = min(
        (r for r in segments if r["speaker"] == "customer"), key=lambda r: r["segment_index"]
    )
    assert first_customer["sentiment"] < -0.3


TURN_SENTIMENT = [
    {"segment": 1, "sentiment": -0.8},
    {"segment": 3, "sentiment": 0.9},
    {"segment": 40, "sentiment": 0.5},  # no such segment: ignored
]
API_KEY = "test-key-123"


def _numbers_segments(request: RecordedRequest) -> bool:
    return "#0 agent:" in request.prompt_text


def test_gemini_scores_each_turn_with_prompt_v4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with FakeGemini(api_key=API_KEY) as fake:
        fake.respond_when(_numbers_segments, ok(valid_analysis_json(turn_sentiment=TURN_SENTIMENT)))
        harness = PipelineHarness(
            root=tmp_path / "run",
            analyzer=AnalyzerResource(
                analyzer="gemini", api_key=API_KEY, base_url=fake.url, prompt_version="v4"
            ),
        )
        harness.drop("negated.txt", NEGATED_CHAT)
        ((key, result),) = harness.process().items()
        assert result.success
        (request,) = [r for r in fake.requests if r.path.endswith(":generateContent")]
        assert "#3 customer: Perfect, thank you so much." in request.prompt_text
        rows = {
            r["segment_index"]: r
            for r in harness.warehouse.fetch_rows(tables.transcript_segments, consultation_id=key)
        }
        assert (rows[1]["sentiment"], rows[1]["sentiment_source"]) == (-0.8, "model")
        assert (rows[3]["sentiment"], rows[3]["sentiment_label"]) == (0.9, "positive")
        assert rows[0]["sentiment_source"] == rows[2]["sentiment_source"] == "lexicon"
        (metrics,) = harness.warehouse.fetch_rows(tables.quality_metrics, consultation_id=key)
        # Four typed turns: one per quarter; the customer speaks in the second and fourth.
        assert metrics["customer_sentiment_q1"] is None
        assert metrics["customer_sentiment_q2"] == -0.8
        assert metrics["customer_sentiment_q4"] == 0.9

        # Prompt v1 does not number the segments: the lexicon scores every turn, and the
        # matches of both prompt versions stay.
        assert harness.reanalyze_all("v1").success
        rows = harness.warehouse.fetch_rows(tables.transcript_segments, consultation_id=key)
        assert {r["sentiment_source"] for r in rows} == {"lexicon"}
        matches = harness.warehouse.fetch_rows(tables.category_matches, consultation_id=key)
        assert {r["prompt_version"] for r in matches} == {"v1", "v4"}
