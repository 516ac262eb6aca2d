"""Review files in the bucket into `qa_reviews` and `review_errors`: the files whose listing
token changed since they were loaded are read, checked row by row and replace what they gave
before. Review files are the QA team's: the pipeline never modifies or deletes them."""

from __future__ import annotations

from dataclasses import dataclass, field

from cscoach_pipeline.defs.calibration.reviews import (
    ConsultationResolver,
    ReviewError,
    parse_review_file,
)
from cscoach_pipeline.defs.ingest.partition_keys import consultation_id_for, display_key
from cscoach_pipeline.defs.ingest.storage.base import ObjectStore, StorageError, StoredObject
from cscoach_pipeline.defs.scoring.scorecards import load_scorecard
from cscoach_pipeline.defs.warehouse.stores import ReviewStore


@dataclass(frozen=True)
class LoadedFile:
    key: str  # as shown (PII redacted)
    rows: int
    errors: int
    replaced: int  # answers another file had given, now this file's


@dataclass
class ReviewLoad:
    files: list[LoadedFile] = field(default_factory=list)
    unchanged: int = 0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def errors(self) -> int:
        return sum(f.errors for f in self.files)


def changed_review_files(
    store: ObjectStore, prefix: str, reviews: ReviewStore
) -> tuple[list[StoredObject], int]:
    """Files under `prefix` that are new or changed since loaded, and how many are not."""
    loaded = reviews.loaded_tokens()
    changed: list[StoredObject] = []
    unchanged = 0
    for obj in store.list_objects(prefix):
        if obj.key.endswith("/"):
            continue
        if loaded.get(display_key(obj.key)) == obj.version_token:
            unchanged += 1
        else:
            changed.append(obj)
    return changed, unchanged


def _resolver(reviews: ReviewStore, incoming_prefix: str) -> ConsultationResolver:
    def resolve(consultation_id: str | None, source_key: str | None) -> str | None:
        if consultation_id:
            return consultation_id if reviews.consultation_exists(consultation_id) else None
        assert source_key is not None
        keys = [source_key]
        if not source_key.startswith(incoming_prefix):
            keys.append(incoming_prefix + source_key.lstrip("/"))
        for key in keys:
            candidate = consultation_id_for(key, incoming_prefix)
            if reviews.consultation_exists(candidate):
                return candidate
            # The table shows keys PII-redacted: a reviewer may have copied that form.
            found = reviews.consultation_with_key(display_key(key))
            if found:
                return found
        return None

    return resolve


def load_review_files(
    store: ObjectStore,
    prefix: str,
    reviews: ReviewStore,
    *,
    default_scorecard: str,
    incoming_prefix: str,
) -> ReviewLoad:
    changed, unchanged = changed_review_files(store, prefix, reviews)
    load = ReviewLoad(unchanged=unchanged)
    resolve = _resolver(reviews, incoming_prefix)
    for obj in changed:
        shown = display_key(obj.key)
        try:
            data = store.read_bytes(obj.key)
        except StorageError as exc:
            # Gone between the listing and the read, or unreadable: recorded, tried again
            # when its token changes.
            parsed_rows, parsed_errors = [], [ReviewError(0, f"could not read the file: {exc}")]
        else:
            parsed = parse_review_file(
                obj.key,
                data,
                default_scorecard=default_scorecard,
                load_scorecard=load_scorecard,
                resolve=resolve,
            )
            parsed_rows, parsed_errors = parsed.rows, parsed.errors
        replaced = reviews.save_file(
            shown,
            obj.version_token,
            [row.row(shown) for row in parsed_rows],
            [error.row(shown) for error in parsed_errors],
        )
        load.files.append(LoadedFile(shown, len(parsed_rows), len(parsed_errors), replaced))
    return load
