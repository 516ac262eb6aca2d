"""Consultation context end to end on the folder bucket: a sidecar `<file>.meta.json` and a
configured key pattern land in the `consultations` table and the upload's Dagster metadata;
a sidecar added later makes a new version of its consultation; the coaching report's
location is recorded in the table."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from dagster import AssetKey

from cscoach_pipeline.defs.ingest.resources import BucketResource
from tests.support.pipeline import PipelineHarness

pytestmark = pytest.mark.integration

CHAT = b"Agent: Hello, thank you for calling.\nCustomer: My card is lost.\n"


@pytest.fixture
def patterned(tmp_path: Path) -> PipelineHarness:
    harness = PipelineHarness(root=tmp_path)
    harness.resources["bucket"] = BucketResource(
        url=harness.bucket_root.as_uri(), key_pattern="incoming/{team}/{agent_id}/"
    )
    harness.rebuild()
    return harness


def test_sidecar_and_key_pattern_fill_the_consultation(patterned: PipelineHarness) -> None:
    patterned.drop("cards/A-7/call.txt", CHAT)
    patterned.drop(
        "cards/A-7/call.txt.meta.json",
        json.dumps({"agent_name": "Kim Minji", "customer_id": "C-42", "direction": "in",
                    "recorded_at": "2026-11-20T09:30:00+09:00", "channel": "phone"}).encode(),
    )  # fmt: skip
    results = patterned.process()
    assert all(r.success for r in results.values()) and len(results) == 1
    row = patterned.table("consultations").iloc[0]
    assert (row.team, row.agent_id, row.agent_name) == ("cards", "A-7", "Kim Minji")
    assert (row.customer_id, row.call_direction, row.channel) == ("C-42", "inbound", "phone")
    assert str(row.recorded_at).startswith("2026-11-20 00:30")
    assert Path(row.report_location).is_file()
    assert Path(row.report_location).read_text().startswith("# Coaching report")
    record = patterned.instance.fetch_materializations(AssetKey("consultation_upload"), limit=1)
    metadata = record.records[0].asset_materialization.metadata
    assert metadata["agent_name"].value == "Kim Minji"


def test_sidecar_added_later_reprocesses(patterned: PipelineHarness) -> None:
    patterned.drop("cards/A-7/call.txt", CHAT)
    assert len(patterned.process()) == 1
    assert patterned.table("consultations").iloc[0].agent_name is None
    sidecar = patterned.drop("cards/A-7/call.meta.json", b'{"agent_name": "Lee"}')
    os.utime(sidecar, (time.time() - 60, time.time() - 60))
    results = patterned.process()
    assert len(results) == 1 and next(iter(results.values())).success
    assert patterned.table("consultations").iloc[0].agent_name == "Lee"
    # Unchanged afterwards: nothing more to do.
    assert patterned.process() == {}
