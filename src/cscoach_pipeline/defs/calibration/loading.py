"""Review files in the bucket into `qa_reviews` and `review_errors`: the files whose listing
token changed since they were loaded are read, checked row by row and replace what they gave
before. Review files are the QA team's: the pipeline never modifies or deletes them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from cscoach_pipeline.defs.calibration.reviews import (
    ConsultationResolver,
    ReviewError,
    parse_review_file,
)
from cscoach_pipeline.defs.ingest.partition_keys import consultation_id_for, display_key
from cscoach_pipeline.defs.ingest.storage.base import ObjectStore, StoredObject
from cscoach_pipeline.defs.scoring.scorecards import load_scorecard
from cscoach_pipeline.defs.warehouse.stores import ConsultationStore, ReviewStore


@dataclass(frozen=True)
class LoadedFile:
    key: str  # as shown (PII redacted, review_file_label)
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


def review_file_label(key: str) -> str:
    """How a review file is named in the tables: its key as shown (PII redacted), with a
    hash of the real key where redaction changed it, so two files never share a name."""
    shown = display_key(key)
    if shown == key and len(key) <= MAX_LABEL_CHARS:
        return key
    digest = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{shown[: MAX_LABEL_CHARS - 9]}#{digest}"


# The tables key files by a String(1024) column (an S3 key is at most 1024 bytes).
MAX_LABEL_CHARS = 1000


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
        if loaded.get(review_file_label(obj.key)) == obj.version_token:
            unchanged += 1
        else:
            changed.append(obj)
    return changed, unchanged


def _resolver(consultations: ConsultationStore, incoming_prefix: str) -> ConsultationResolver:
    def resolve(consultation_id: str | None, source_key: str | None) -> str | None:
        if consultation_id:
            return consultation_id if consultations.exists(consultation_id) else None
        assert source_key is not None
        keys = [source_key]
        if not source_key.startswith(incoming_prefix):
            keys.append(incoming_prefix + source_key.lstrip("/"))
        for key in keys:
            candidate = consultation_id_for(key, incoming_prefix)
            if consultations.exists(candidate):
                return candidate
        # A key copied from the tables, already redacted ("call-[PHONE].wav"): only when
        # exactly one consultation is shown so, never a guess between several.
        if display_key(source_key) == source_key:
            for key in keys:
                found = consultations.with_shown_key(key, limit=2)
                if len(found) == 1:
                    return found[0]
        return None

    return resolve


def load_review_files(
    store: ObjectStore,
    prefix: str,
    reviews: ReviewStore,
    consultations: ConsultationStore,
    *,
    default_scorecard: str,
    incoming_prefix: str,
) -> ReviewLoad:
    changed, unchanged = changed_review_files(store, prefix, reviews)
    load = ReviewLoad(unchanged=unchanged)
    resolve = _resolver(consultations, incoming_prefix)
    for obj in changed:
        shown = review_file_label(obj.key)
        # A read that fails is the store's outage: the run fails and the sensor tries again.
        data = store.read_bytes(obj.key)
        try:
            parsed = parse_review_file(
                obj.key,
                data,
                default_scorecard=default_scorecard,
                load_scorecard=load_scorecard,
                resolve=resolve,
            )
            rows, errors = parsed.rows, parsed.errors
        except SQLAlchemyError:
            raise  # the warehouse's outage, not the file's fault
        except Exception as exc:  # content no check foresaw: the file's problem, not a stall
            rows, errors = [], [ReviewError(0, f"could not read the file: {type(exc).__name__}")]
        replaced = reviews.save_file(
            shown,
            obj.version_token,
            [row.row(shown) for row in rows],
            [error.row(shown) for error in errors],
        )
        load.files.append(LoadedFile(shown, len(rows), len(errors), replaced))
    return load
