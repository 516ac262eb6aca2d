"""Proves how review files are named and matched to consultations when their keys carry
personal data: two files whose keys redact alike keep separate rows; a review naming a
consultation by its redacted key is matched only when exactly one consultation shows that
key, and a review for a consultation the pipeline does not have is refused, never matched
to a look-alike. A failing read is the store's outage (the run fails and is asked again),
not a file recorded as loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from cscoach_pipeline.defs.calibration.loading import load_review_files, review_file_label
from cscoach_pipeline.defs.ingest.partition_keys import consultation_id_for, display_key
from cscoach_pipeline.defs.ingest.storage.base import StorageError
from cscoach_pipeline.defs.ingest.storage.local import LocalFolderStore
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.engine import utcnow
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource

HEADER = "source_key,reviewer,question_id,answer\n"


def _setup(tmp_path: Path, keys: list[str]) -> tuple[LocalFolderStore, WarehouseResource]:
    warehouse = WarehouseResource(url=f"sqlite:///{tmp_path / 'w.db'}")
    for key in keys:
        warehouse.consultations.save({
            "consultation_id": consultation_id_for(key), "source_key": display_key(key),
            "file_type": "text", "uploaded_at": utcnow(),
        })  # fmt: skip
    root = tmp_path / "bucket"
    root.mkdir()
    return LocalFolderStore(root), warehouse


def _load(store: LocalFolderStore, warehouse: WarehouseResource) -> None:
    load_review_files(
        store, "reviews/", warehouse.reviews, warehouse.consultations,
        default_scorecard="inbound/v1", incoming_prefix="incoming/",
    )  # fmt: skip


def test_files_whose_keys_redact_alike_keep_their_own_rows(tmp_path: Path) -> None:
    store, warehouse = _setup(tmp_path, ["incoming/a.txt"])
    for reviewer, folder in (("qa-kim", "kim.minsu@acme.com"), ("qa-lee", "lee.j@acme.com")):
        store.write_bytes(
            f"reviews/{folder}/week48.csv", f"{HEADER}a.txt,{reviewer},greeting,yes\n".encode()
        )
    assert review_file_label("reviews/kim.minsu@acme.com/week48.csv") != review_file_label(
        "reviews/lee.j@acme.com/week48.csv"
    )
    _load(store, warehouse)
    _load(store, warehouse)  # nothing changed: nothing replaced
    rows = warehouse.fetch_rows(tables.qa_reviews)
    assert sorted(r["reviewer"] for r in rows) == ["qa-kim", "qa-lee"]
    assert all("acme.com" not in r["review_file"] for r in rows)
    assert all(r["review_file"].startswith("reviews/[EMAIL]/week48.csv#") for r in rows)


def test_redacted_keys_match_one_consultation_or_none(tmp_path: Path) -> None:
    calls = ["incoming/call-010-1234-5678.txt", "incoming/call-010-2222-3333.txt"]
    store, warehouse = _setup(tmp_path, [*calls, "incoming/only-010-7777-8888.txt"])
    store.write_bytes(
        "reviews/r.csv",
        (
            f"{HEADER}"
            "incoming/call-[PHONE].txt,qa-kim,greeting,yes\n"  # two calls show this key
            "incoming/call-010-5555-6666.txt,qa-kim,greeting,yes\n"  # no such call
            "incoming/only-[PHONE].txt,qa-kim,greeting,yes\n"  # exactly one
            "incoming/call-010-2222-3333.txt,qa-kim,empathy,no\n"  # the real key
        ).encode(),
    )
    _load(store, warehouse)
    loaded = {
        r["row_number"]: r["consultation_id"] for r in warehouse.fetch_rows(tables.qa_reviews)
    }
    assert loaded == {
        4: consultation_id_for("incoming/only-010-7777-8888.txt"),
        5: consultation_id_for(calls[1]),
    }
    errors = {r["row_number"] for r in warehouse.fetch_rows(tables.review_errors)}
    assert errors == {2, 3}


def test_a_failing_read_fails_the_load_instead_of_recording_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, warehouse = _setup(tmp_path, ["incoming/a.txt"])
    store.write_bytes("reviews/r.csv", f"{HEADER}a.txt,qa-kim,greeting,yes\n".encode())

    def unreachable(key: str) -> bytes:
        raise StorageError("bucket unreachable")

    monkeypatch.setattr(store, "read_bytes", unreachable)
    with pytest.raises(StorageError):
        _load(store, warehouse)
    assert warehouse.reviews.loaded_tokens() == {}
    monkeypatch.undo()
    _load(store, warehouse)
    assert len(warehouse.fetch_rows(tables.qa_reviews)) == 1
