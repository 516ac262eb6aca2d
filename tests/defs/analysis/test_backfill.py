"""A reanalysis backfill as Dagster's backfill daemon runs it with the multi-run policy: one
run over a range of consultation partitions analyses them concurrently inside the run (within
the rate limit), materializes each consultation as it finishes, and when one consultation
fails the others stay materialized while the run fails naming the one that did not."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from dagster import AssetKey

from cscoach_pipeline.defs.analysis.assets import (
    BACKFILL_PARTITIONS_PER_RUN,
    build_analysis_assets,
)
from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from tests.support.fake_gemini import FakeGemini, RecordedRequest, Reply, default_responder, ok
from tests.support.pipeline import PipelineHarness

pytestmark = pytest.mark.integration

API_KEY = "test-key-backfill"


def test_analysis_assets_backfill_many_partitions_per_run() -> None:
    step = build_analysis_assets("v1", "local-rules")
    assert step.backfill_policy is not None
    assert step.backfill_policy.policy_type.name == "MULTI_RUN"
    assert step.backfill_policy.max_partitions_per_run == BACKFILL_PARTITIONS_PER_RUN == 100


def test_one_run_reanalyses_a_range_concurrently(tmp_path: Path) -> None:
    in_flight, peak, lock = 0, 0, threading.Lock()

    def responder(request: RecordedRequest) -> Reply:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.2)  # a slow model: concurrency is what keeps throughput up
        with lock:
            in_flight -= 1
        if "call number 7." in request.prompt_text:
            return ok("not json at all")  # this consultation fails, even after repair
        return default_responder(request)

    with FakeGemini(api_key=API_KEY) as fake:
        fake.set_default(responder)
        analyzer = AnalyzerResource(
            analyzer="gemini",
            api_key=API_KEY,
            base_url=fake.url,
            backoff_base_s=0.01,
            requests_per_minute=6000,
            max_concurrent=4,
        )
        harness = PipelineHarness(root=tmp_path, analyzer=analyzer)
        # First pass with local rules (Gemini not involved), as a history to re-analyse.
        harness.analyzer = AnalyzerResource()
        harness.resources["analyzer"] = AnalyzerResource()
        harness.rebuild()
        drops = {
            f"c{i:02d}.txt": f"Agent: Hello, call number {i}.\nCustomer: Thanks.\n".encode()
            for i in range(12)
        }
        assert all(r.success for r in harness.process_batch(drops).results.values())

        harness.resources["analyzer"] = analyzer
        harness.rebuild()
        result = harness.reanalyze_all("v2")

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "1 of 12 consultations failed" in failure.event_specific_data.error.message
    assert "c07.txt" in failure.event_specific_data.error.message
    materialized = harness.instance.get_materialized_partitions(AssetKey("quality_metrics"))
    assert len(materialized) == 12  # v1 for all; v2 below for 11
    v2 = harness.table("analyses").query("prompt_version == 'v2'")
    assert len(v2) == 11 and set(v2.analyzer) == {"gemini"}
    assert peak > 1 and peak <= 4  # concurrent inside one run, never above the limit
    assert harness.status_by_key()["incoming/c07.txt"]["status"] == "failed"
