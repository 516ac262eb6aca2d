"""Proves the per-consultation asset checks through the real pipeline: every consultation,
chats and a recording (whose confidence is Whisper's own), whether it ran alone or in a
batch run of several, gets its own `transcript_confidence`,
`no_pii_left` and `analysis_valid` evaluations on its own partition, and a doubtful analysis
(Gemini inventing a phone number and a quote) shows as that partition's failed check while
its run succeeds and the other consultation's checks pass; the invented number is redacted
before any table holds it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance

from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from tests.support.fake_gemini import FakeGemini, ok, valid_analysis_json
from tests.support.media_factory import Line, stereo_call
from tests.support.pipeline import PipelineHarness

pytestmark = pytest.mark.integration

CHECKS = [
    (AssetKey("transcript"), "transcript_confidence"),
    (AssetKey("transcript"), "no_pii_left"),
    (AssetKey("consultation_analysis"), "analysis_valid"),
]
CHAT = "Agent: Hello, Acme support, how can I help?\nCustomer: my card {n} is lost.\n"


def _evaluations(instance: DagsterInstance, asset: AssetKey, name: str) -> dict[str, object]:
    """The latest evaluation per partition."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(asset, name), limit=100
    )
    latest: dict[str, object] = {}
    for record in records:  # newest first
        event = record.event.dagster_event if record.event else None
        data = event.event_specific_data if event else None
        if data is not None and data.partition not in latest:
            latest[data.partition] = data
    return latest


def _partition_status(instance: DagsterInstance, asset: AssetKey, name: str) -> list:
    return list(
        instance.event_log_storage.get_asset_check_partition_info([AssetCheckKey(asset, name)])
    )


def test_each_consultation_gets_its_checks_alone_and_in_a_batch(tmp_path: Path) -> None:
    harness = PipelineHarness(tmp_path / "run", text_batch_size=3)
    for n in range(3):
        harness.drop(f"batch-{n}.txt", CHAT.format(n=n).encode())
    results = harness.process()
    assert all(r.success for r in results.values()) and len(results) == 1  # one batch run
    harness.text_batch_size = 1
    harness.drop("alone.txt", CHAT.format(n=9).encode())
    # A recording: its confidence is Whisper's own, not the text's "nothing recognised".
    call = stereo_call(tmp_path / "speech", "call", [
        Line("agent", "Thank you for calling Acme support. How can I help you today?"),
        Line("customer", "Hi, I would like to check my order status, please."),
    ])  # fmt: skip
    harness.drop("call.wav", call)
    assert all(r.success for r in harness.process().values())
    ids = {row["consultation_id"] for row in harness.status_by_key().values()}
    assert len(ids) == 5
    for asset, name in CHECKS:
        evaluations = _evaluations(harness.instance, asset, name)
        assert set(evaluations) == ids, name
        assert all(e.passed for e in evaluations.values()), name
        # What the UI's Checks -> Partitions shows: each partition's result is current (it
        # targets the partition's latest materialization), not "missing".
        shown = {p.partition_key: p for p in _partition_status(harness.instance, asset, name)}
        assert set(shown) == ids, name
        assert all(p.is_current for p in shown.values()), name
        assert {p.latest_execution_status.value for p in shown.values()} == {"SUCCEEDED"}
    call_id = harness.status_by_key()["incoming/call.wav"]["consultation_id"]
    confidence = _evaluations(harness.instance, AssetKey("transcript"), "transcript_confidence")
    measured = confidence[call_id].metadata["mean_confidence"].value
    assert 0.55 <= measured <= 1.0 and confidence[call_id].metadata["segments"].value >= 2


def test_an_invented_phone_number_and_quote_fail_that_consultations_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    invented = json.loads(valid_analysis_json())
    invented["summary"] = "The customer (call back on 010-2222-3333) reported a lost card."
    invented["improvement_points"] = [
        {"point": "do not promise refunds", "evidence_quote": "I will refund you twice"}
    ]
    with FakeGemini(api_key="k-checks") as fake:
        fake.respond_when(lambda r: "doubtful" in r.prompt_text, ok(json.dumps(invented)))
        fake.set_default(ok())
        analyzer = AnalyzerResource(
            analyzer="gemini", api_key="k-checks", base_url=fake.url, backoff_base_s=0.01
        )
        harness = PipelineHarness(tmp_path, analyzer=analyzer)
        harness.drop("doubtful.txt", b"Agent: Hello.\nCustomer: my doubtful card is lost.\n")
        harness.drop("fine.txt", CHAT.format(n=1).encode())
        results = harness.process()
    assert all(r.success for r in results.values())
    ids = {k: row["consultation_id"] for k, row in harness.status_by_key().items()}
    evaluations = _evaluations(
        harness.instance, AssetKey("consultation_analysis"), "analysis_valid"
    )
    doubtful = evaluations[ids["incoming/doubtful.txt"]]
    # The number never reached a table: redacted from the answer before it was stored.
    assert not doubtful.passed and doubtful.severity.value == "WARN"
    assert "evidence quotes are not in the transcript" in doubtful.description
    assert "the model's answer held 1 possible PII" in doubtful.description
    assert doubtful.metadata["pii_redacted_from_answer"].value == 1
    assert "010-2222-3333" not in harness.all_table_text()
    shown = doubtful.description + repr(doubtful.metadata)
    assert "2222" not in shown and "3333" not in shown
    assert evaluations[ids["incoming/fine.txt"]].passed
    shown = {
        p.partition_key: p.latest_execution_status.value
        for p in _partition_status(
            harness.instance, AssetKey("consultation_analysis"), "analysis_valid"
        )
    }
    assert shown == {ids["incoming/doubtful.txt"]: "FAILED", ids["incoming/fine.txt"]: "SUCCEEDED"}
