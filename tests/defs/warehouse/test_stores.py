"""The warehouse stores own the SQL: the sensor's inventory and resume state, statuses, the
consultations row, versioned results and the analysis cache each write and read what their
callers need, replace whole keys (idempotent re-runs) and keep other consultations intact."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cscoach_pipeline.defs.analysis.analyzers import AnalysisOutcome
from cscoach_pipeline.defs.analysis.cache import AnalysisCache
from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.defs.warehouse.stores import KnownObject
from tests.support.fake_gemini import valid_analysis


@pytest.fixture
def warehouse(tmp_path: Path) -> WarehouseResource:
    return WarehouseResource(url=f"sqlite:///{tmp_path / 'w.db'}")


def test_inventory_records_loads_and_marks_deleted(warehouse: WarehouseResource) -> None:
    inventory = warehouse.inventory
    first = KnownObject("c1", "tok-1", "fp-1", 1, "active")
    inventory.record("incoming/a.wav", None, first, size=10)
    inventory.record("incoming/b.wav", None, KnownObject("c2", "t", None, 1, "rejected"), 5)
    second = KnownObject("c1", "tok-2", "fp-2", 2, "active")
    inventory.record("incoming/a.wav", first, second, size=11)
    assert inventory.load() == {
        "incoming/a.wav": second,
        "incoming/b.wav": KnownObject("c2", "t", None, 1, "rejected"),
    }
    assert inventory.current_version("c1") == 2
    assert [r["source_key"] for r in inventory.objects_of("c2", active_only=True)] == []
    inventory.mark_deleted(["incoming/a.wav"])
    assert inventory.load()["incoming/a.wav"].state == "deleted"
    assert inventory.current_version("c1") is None
    (row,) = warehouse.fetch_rows(tables.bucket_objects, source_key="incoming/a.wav")
    assert row["size_bytes"] == 11 and row["first_seen_at"] <= row["updated_at"]


def test_inventory_state_round_trips(warehouse: WarehouseResource) -> None:
    assert warehouse.inventory.get_state("resume") is None
    warehouse.inventory.set_state("resume", "incoming/k")
    warehouse.inventory.set_state("resume", "incoming/m")
    assert warehouse.inventory.get_state("resume") == "incoming/m"


def test_status_set_overwrites_every_column(warehouse: WarehouseResource) -> None:
    statuses = warehouse.statuses
    statuses.set("c1", "incoming/a.wav", "failed", stage="x", error="boom", failure_kind="outage")
    statuses.set("c1", "incoming/a.wav", "queued", stage="sensor")
    row = statuses.get("c1")
    assert row is not None
    assert (row["status"], row["error"], row["failure_kind"]) == ("queued", None, None)
    assert [r["consultation_id"] for r in statuses.with_status("queued")] == ["c1"]
    assert statuses.get("missing") is None


def test_consultations_save_update_and_analysed_filters(warehouse: WarehouseResource) -> None:
    store = warehouse.consultations
    for index, day in enumerate((date(2026, 11, 1), date(2026, 11, 15), date(2026, 11, 30))):
        store.save(
            {
                "consultation_id": f"c{index}",
                "source_key": f"incoming/{index}.txt",
                "file_type": "text",
                "uploaded_at": datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
            }
        )
    store.update("c1", language="ko", duration_s=3.5)
    assert store.get("c1")["language"] == "ko" and store.get("c1")["file_type"] == "text"
    with pytest.raises(LookupError):
        store.get("nope")
    assert store.analysed() == []  # nothing analysed yet
    for consultation_id in ("c0", "c1", "c2"):
        warehouse.results.save_analysis(_analysis_row(consultation_id, "v1"))
    assert store.analysed() == ["c0", "c1", "c2"]
    assert store.analysed(uploaded_from=date(2026, 11, 10)) == ["c1", "c2"]
    assert store.analysed(uploaded_to=date(2026, 11, 15)) == ["c0", "c1"]
    assert store.analysed(ids=["c2", "zz"]) == ["c2"]


def test_results_keep_one_row_per_prompt_version(warehouse: WarehouseResource) -> None:
    results = warehouse.results
    results.save_analysis(_analysis_row("c1", "v1", summary="first"))
    results.save_analysis(_analysis_row("c1", "v2", summary="other prompt"))
    results.save_analysis(_analysis_row("c1", "v1", summary="again"))
    rows = {r["prompt_version"]: r["summary"] for r in warehouse.fetch_rows(tables.analyses)}
    assert rows == {"v1": "again", "v2": "other prompt"}
    results.save_segments("c1", [_segment(0, "a"), _segment(1, "b")])
    results.save_segments("c2", [_segment(0, "keep")])
    results.save_segments("c1", [_segment(0, "new")])
    texts = sorted(r["text"] for r in warehouse.fetch_rows(tables.transcript_segments))
    assert texts == ["keep", "new"]


def test_cache_returns_stored_answers_and_skips_fallbacks(warehouse: WarehouseResource) -> None:
    cache = AnalysisCache(warehouse.analysis_cache)
    outcome = AnalysisOutcome(
        analysis=ConsultationAnalysis.model_validate(valid_analysis()),
        analyzer="gemini",
        model="gemini-2.5-flash",
        elapsed_s=1.2,
        input_tokens=100,
        output_tokens=50,
        cached_tokens=0,
        requests=1,
    )
    assert cache.get("k1") is None
    cache.put("k1", "v1", outcome)
    hit = cache.get("k1")
    assert hit is not None
    assert (hit.analysis, hit.model, hit.input_tokens) == (
        outcome.analysis,
        "gemini-2.5-flash",
        100,
    )
    assert hit.elapsed_s == 0.0
    fallback = AnalysisOutcome(
        analysis=outcome.analysis, analyzer="local-rules", model="local-rules-v1",
        elapsed_s=0.1, fallback_reason="local-rules used: circuit open",
    )  # fmt: skip
    cache.put("k2", "v1", fallback)
    assert cache.get("k2") is None


def _analysis_row(consultation_id: str, version: str, summary: str = "s") -> dict:
    return {
        "consultation_id": consultation_id,
        "prompt_version": version,
        "analyzer": "local-rules",
        "model": "local-rules-v1",
        "summary": summary,
        "result_json": {},
    }


def _segment(index: int, text: str) -> dict:
    return {"segment_index": index, "speaker": "agent", "text": text}
