"""End to end with Gemini as the analyzer: the real sensor, Dagster job and google-genai client,
with only the Gemini HTTP server faked (tests/support/fake_gemini.py).

One batch of two text consultations is processed. It proves that:

* a consultation is analysed by Gemini: the `analyses` row says analyzer "gemini", the model,
  and holds the fake's summary;
* only redacted text leaves the machine: the request bodies hold "[PHONE]" and "[EMAIL]" and
  never the raw phone number or e-mail address;
* the API key travels only in the ``x-goog-api-key`` header and appears in no BI table, no
  artifact, no Dagster event log entry and no materialization metadata;
* a persistent Gemini 500 fails only its own partition, after max_retries + 1 requests, with a
  readable `consultation_status.error` mentioning Gemini, while the other file succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from dagster import DagsterEventType, ExecuteInProcessResult, serialize_value

from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from tests.support.fake_gemini import FAKE_SUMMARY, FakeGemini, RecordedRequest, error
from tests.support.pipeline import PipelineHarness

pytestmark = pytest.mark.integration

API_KEY = "test-key-123"
MODEL = "gemini-2.5-flash"
PII_CALL = (
    b"Agent: Hello, thank you for calling Acme, this is Mina. How can I help?\n"
    b"Customer: My parcel never arrived. My phone is 010-1234-5678 and email kim@example.com\n"
    b"Agent: I am sorry about that. I have rebooked the delivery for tomorrow morning.\n"
    b"Customer: Great, thank you. Bye.\n"
)
# The fake answers every request about this call with a persistent 500.
ROUTER_CALL = (
    b"Customer: My router keeps rebooting every hour.\n"
    b"Agent: Please unplug it for thirty seconds and plug it back in.\n"
)
PII_KEY = "incoming/team-a/agent-1/pii-call.txt"
ROUTER_KEY = "incoming/team-a/agent-2/router-call.txt"
MAX_RETRIES = 3


def about_router(request: RecordedRequest) -> bool:
    return "router" in request.prompt_text


@dataclass
class Batch:
    harness: PipelineHarness
    fake: FakeGemini
    results: dict[str, ExecuteInProcessResult]

    def consultation_id(self, source_key: str) -> str:
        return self.harness.status_by_key()[source_key]["consultation_id"]

    def result(self, source_key: str) -> ExecuteInProcessResult:
        return self.results[self.consultation_id(source_key)]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    mp = pytest.MonkeyPatch()
    mp.delenv("GEMINI_API_KEY", raising=False)
    try:
        with FakeGemini(api_key=API_KEY) as fake:
            fake.respond_when(
                about_router, error(500, "INTERNAL", "An internal error has occurred.")
            )
            harness = PipelineHarness(
                root=tmp_path_factory.mktemp("gemini"),
                analyzer=AnalyzerResource(
                    analyzer="gemini",
                    api_key=API_KEY,
                    model=MODEL,
                    base_url=fake.url,
                    max_retries=MAX_RETRIES,
                    backoff_base_s=0.01,
                ),
            )
            harness.drop("team-a/agent-1/pii-call.txt", PII_CALL)
            harness.drop("team-a/agent-2/router-call.txt", ROUTER_CALL)
            results = harness.process()
        yield Batch(harness, fake, results)
    finally:
        mp.undo()


def test_both_files_were_run(batch: Batch) -> None:
    assert set(batch.harness.status_by_key()) == {PII_KEY, ROUTER_KEY}
    assert len(batch.results) == 2


def test_consultation_is_analysed_by_gemini(batch: Batch) -> None:
    assert batch.result(PII_KEY).success
    assert batch.harness.status_by_key()[PII_KEY]["status"] == "succeeded"
    analyses = batch.harness.table("analyses")
    (row,) = analyses[analyses.consultation_id == batch.consultation_id(PII_KEY)].to_dict("records")
    assert row["analyzer"] == "gemini"
    assert row["model"] == MODEL
    assert row["summary"] == FAKE_SUMMARY
    assert row["prompt_version"] == "v1"


def test_only_redacted_text_reaches_gemini(batch: Batch) -> None:
    pii_requests = [r for r in batch.fake.requests if not about_router(r)]
    assert len(pii_requests) == 1
    prompt = pii_requests[0].prompt_text
    assert "[PHONE]" in prompt and "[EMAIL]" in prompt
    assert "parcel never arrived" in prompt
    sent = batch.fake.bodies_text()
    for secret in ("010-1234-5678", "01012345678", "1234-5678", "kim@example.com", "kim@"):
        assert secret not in sent


def test_api_key_travels_only_in_the_header(batch: Batch) -> None:
    assert batch.fake.requests
    for request in batch.fake.requests:
        assert request.headers["x-goog-api-key"] == API_KEY
        assert API_KEY not in request.path
        assert API_KEY not in request.raw_body


def test_api_key_is_not_stored_anywhere(batch: Batch) -> None:
    harness = batch.harness
    assert API_KEY not in harness.all_table_text()
    for path in harness.bucket_root.rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path


def test_api_key_is_not_in_dagster_logs_or_metadata(batch: Batch) -> None:
    instance = batch.harness.instance
    analysis_metadata = []
    for result in batch.results.values():
        assert API_KEY not in serialize_value(instance.get_run_by_id(result.run_id))
        entries = instance.all_logs(result.run_id)
        assert entries
        for entry in entries:
            assert API_KEY not in serialize_value(entry)
            assert API_KEY not in (entry.user_message or "")
        for event in result.get_asset_materialization_events():
            metadata = event.step_materialization_data.materialization.metadata
            assert API_KEY not in serialize_value(metadata)
            if event.asset_key.path[-1] == "consultation_analysis":
                analysis_metadata.append(metadata)
    # The analysis step really materialized through Gemini, so there was metadata to check.
    (metadata,) = analysis_metadata
    assert metadata["analyzer"].value == "gemini"
    assert metadata["model"].value == MODEL
    assert metadata["input_tokens"].value > 0


def test_persistent_gemini_error_fails_only_its_partition(batch: Batch) -> None:
    statuses = batch.harness.status_by_key()
    failed = statuses[ROUTER_KEY]
    assert failed["status"] == "failed"
    assert failed["stage"] == "consultation_analysis"
    assert failed["error"] == (
        f"Gemini request failed with HTTP 500 INTERNAL: An internal error has occurred. "
        f"(after {MAX_RETRIES + 1} attempts)"
    )
    assert len([r for r in batch.fake.requests if about_router(r)]) == MAX_RETRIES + 1

    result = batch.result(ROUTER_KEY)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "analyse_and_score"
    assert "Gemini request failed with HTTP 500" in failure.event_specific_data.error.message

    analyses = batch.harness.table("analyses")
    assert batch.consultation_id(ROUTER_KEY) not in set(analyses.consultation_id)
    assert statuses[PII_KEY]["status"] == "succeeded" and batch.result(PII_KEY).success
