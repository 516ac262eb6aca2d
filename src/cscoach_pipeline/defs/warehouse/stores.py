"""The SQL the pipeline writes, one store per concern, so sensors, steps and command-line
tools never build rows or queries themselves. Every write replaces or upserts whole keys in
one transaction, so re-running anything is idempotent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Table, and_, bindparam, func, or_, select

from cscoach_pipeline.defs.recovery.policy import FINAL_STATUSES, GAVE_UP, REQUEUABLE_STATUSES
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.engine import as_utc, utcnow

if TYPE_CHECKING:  # pandas costs ~0.3 s to import: only where a frame is read
    import pandas as pd

# IN (...) lists are sent in chunks: SQLite caps bound parameters per statement.
_CHUNK = 500


class TableAccess:
    """Row-level primitives over one engine, shared by the stores."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def replace_rows(
        self, table: Table, match: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Delete the rows matching `match`, insert `rows`, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(_where(table, match)))
            if rows:
                conn.execute(table.insert(), [_utc_values(r) for r in rows])

    def upsert(self, table: Table, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """Update the row with primary key `key` (only the given columns), or insert it."""
        values = _utc_values(values)
        with self.engine.begin() as conn:
            result = conn.execute(table.update().where(_where(table, key)).values(**values))
            if result.rowcount == 0:
                conn.execute(table.insert().values(**key, **values))

    def fetch_rows(self, table: Table, **match: Any) -> list[dict[str, Any]]:
        query = select(table)
        if match:
            query = query.where(_where(table, match))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def write_many(self, table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
        batch = [_utc_values(r) for r in rows]
        if batch:
            with self.engine.begin() as conn:
                conn.execute(table.insert(), batch)

    def read_frame(self, sql: str) -> pd.DataFrame:
        with self.engine.connect() as conn:
            import pandas as pd

            return pd.read_sql_query(sql, conn)


@dataclass(slots=True)
class KnownObject:
    """What the sensor remembers of one object in the bucket."""

    consultation_id: str
    version_token: str
    fingerprint: str | None
    version: int
    state: str


class InventoryStore(TableAccess):
    """`bucket_objects` and `sensor_state`: what the bucket sensor has seen (internal)."""

    def load(self) -> dict[str, KnownObject]:
        t = tables.bucket_objects
        query = select(
            t.c.source_key, t.c.consultation_id, t.c.version_token, t.c.fingerprint,
            t.c.version, t.c.state,
        )  # fmt: skip
        with self.engine.connect() as conn:
            return {row[0]: KnownObject(*row[1:]) for row in conn.execute(query)}

    def record(self, key: str, known: KnownObject | None, current: KnownObject, size: int) -> None:
        values: dict[str, Any] = {
            "consultation_id": current.consultation_id,
            "version_token": current.version_token,
            "size_bytes": size,
            "fingerprint": current.fingerprint,
            "version": current.version,
            "state": current.state,
            "updated_at": utcnow(),
        }
        if known is None:
            values["first_seen_at"] = values["updated_at"]
        self.upsert(tables.bucket_objects, {"source_key": key}, values)

    def mark_deleted(self, keys: Sequence[str]) -> None:
        t = tables.bucket_objects
        with self.engine.begin() as conn:
            for start in range(0, len(keys), _CHUNK):
                conn.execute(
                    t.update()
                    .where(t.c.source_key.in_(keys[start : start + _CHUNK]))
                    .values(state="deleted", version_token="", updated_at=utcnow())
                )

    def objects_of(self, consultation_id: str, *, active_only: bool = False) -> list[dict]:
        rows = self.fetch_rows(tables.bucket_objects, consultation_id=consultation_id)
        return [r for r in rows if r["state"] == "active"] if active_only else rows

    def current_version(self, consultation_id: str) -> int | None:
        active = self.objects_of(consultation_id, active_only=True)
        return max((r["version"] for r in active), default=None)

    def get_state(self, name: str) -> str | None:
        rows = self.fetch_rows(tables.sensor_state, name=name)
        return rows[0]["value"] if rows else None

    def set_state(self, name: str, value: str) -> None:
        self.upsert(tables.sensor_state, {"name": name}, {"value": value, "updated_at": utcnow()})


class StatusStore(TableAccess):
    """`consultation_status`: where each consultation stands, and why."""

    def set(
        self,
        consultation_id: str,
        source_key: str,
        status: str,
        *,
        stage: str | None = None,
        error: str | None = None,
        run_id: str | None = None,
        attempt: int | None = None,
        failure_kind: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Every column is written each time, so a new version or a new attempt never
        inherits an older attempt's reason or retry time."""
        self.upsert(
            tables.consultation_status,
            {"consultation_id": consultation_id},
            {
                "source_key": source_key,
                "status": status,
                "stage": stage,
                "error": error,
                "run_id": run_id,
                "attempt": attempt,
                "failure_kind": failure_kind,
                "next_attempt_at": next_attempt_at,
                "updated_at": utcnow(),
            },
        )

    def get(self, consultation_id: str) -> dict[str, Any] | None:
        rows = self.fetch_rows(tables.consultation_status, consultation_id=consultation_id)
        return rows[0] if rows else None

    def with_status(self, status: str) -> list[dict[str, Any]]:
        return self.fetch_rows(tables.consultation_status, status=status)

    def finished_badly_since(
        self, after: datetime, after_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """`failed` and `rejected` rows written after (`after`, `after_id`), oldest first
        (the alerts). An outage that will be retried is not final yet: only once its retries
        gave up."""
        c = tables.consultation_status.c
        at = after.astimezone(UTC)
        later = c.updated_at > at
        if after_id is not None:
            later = or_(later, and_(c.updated_at == at, c.consultation_id > after_id))
        final = or_(
            c.failure_kind.is_(None),
            c.failure_kind != "outage",
            c.error.like(f"%{GAVE_UP}%"),
        )
        query = (
            select(tables.consultation_status)
            .where(c.status.in_(("failed", "rejected")), later, final)
            .order_by(c.updated_at, c.consultation_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def recovery_candidates(
        self, *, now: datetime, stale_before: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """Status rows the recovery sensor looks at: `queued`/`processing` rows untouched
        since `stale_before` (and not waiting for a retry on purpose), outages recorded by a
        step but not yet scheduled, and retries or re-queue requests whose time has come."""
        c = tables.consultation_status.c
        query = (
            select(tables.consultation_status)
            .where(
                or_(
                    and_(
                        c.status.in_(("queued", "processing")),
                        c.updated_at < stale_before,
                        c.next_attempt_at.is_(None),
                    ),
                    and_(c.status == "queued", c.next_attempt_at <= now),
                    and_(
                        c.status == "failed",
                        c.failure_kind == "outage",
                        c.updated_at < stale_before,
                        c.error.not_like(f"%{GAVE_UP}%"),
                    ),
                )
            )
            .order_by(c.updated_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def mark_for_requeue(
        self,
        *,
        statuses: Sequence[str],
        ids: Sequence[str] = (),
        failure_kinds: Sequence[str] = (),
        dry_run: bool = False,
    ) -> list[str]:
        """Flag consultations for a fresh run (the recovery sensor launches it on its next
        tick); attempts count again (stored as 0, the next run is 1). Returns the ids selected."""
        c = tables.consultation_status.c
        where = [c.status.in_([s for s in statuses if s in REQUEUABLE_STATUSES])]
        if ids:
            where.append(c.consultation_id.in_(list(ids)))
        if failure_kinds:
            where.append(c.failure_kind.in_(list(failure_kinds)))
        with self.engine.begin() as conn:
            selected = list(
                conn.execute(
                    select(c.consultation_id).where(*where).order_by(c.consultation_id)
                ).scalars()
            )
            if selected and not dry_run:
                now = utcnow()
                for start in range(0, len(selected), _CHUNK):
                    conn.execute(
                        tables.consultation_status.update()
                        .where(c.consultation_id.in_(selected[start : start + _CHUNK]))
                        .values(
                            status="queued",
                            stage="requeue",
                            error=None,
                            attempt=0,
                            failure_kind=None,
                            next_attempt_at=now,
                            updated_at=now,
                        )
                    )
        return selected


class ConsultationStore(TableAccess):
    """`consultations`: one row per consultation, filled in by the steps as they learn."""

    def save(self, row: Mapping[str, Any]) -> None:
        """The upload step's full row (replaces an older version's)."""
        consultation_id = row["consultation_id"]
        self.replace_rows(
            tables.consultations,
            {"consultation_id": consultation_id},
            [{**row, "updated_at": utcnow()}],
        )

    def update(self, consultation_id: str, **values: Any) -> None:
        self.upsert(
            tables.consultations,
            {"consultation_id": consultation_id},
            {**values, "updated_at": utcnow()},
        )

    def get(self, consultation_id: str) -> dict[str, Any]:
        rows = self.fetch_rows(tables.consultations, consultation_id=consultation_id)
        if not rows:
            raise LookupError(f"consultation {consultation_id!r} has no consultations row")
        return rows[0]

    def exists(self, consultation_id: str) -> bool:
        t = tables.consultations
        query = select(t.c.consultation_id).where(t.c.consultation_id == consultation_id)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def with_shown_key(self, shown_key: str, *, limit: int) -> list[str]:
        """Consultations whose `source_key` (as shown, PII redacted) is `shown_key`."""
        t = tables.consultations
        query = select(t.c.consultation_id).where(t.c.source_key == shown_key).limit(limit)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def analysed(
        self,
        *,
        uploaded_from: date | None = None,
        uploaded_to: date | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Consultations analysed before (so they have a transcript), filtered: what a
        reanalysis can run over."""
        c, a = tables.consultations, tables.analyses
        query = (
            select(c.c.consultation_id)
            .where(c.c.consultation_id.in_(select(a.c.consultation_id)))
            .order_by(c.c.consultation_id)
        )
        if ids:
            query = query.where(c.c.consultation_id.in_(list(ids)))
        if uploaded_from:
            query = query.where(c.c.uploaded_at >= datetime.combine(uploaded_from, time(), UTC))
        if uploaded_to:
            end = datetime.combine(uploaded_to + timedelta(days=1), time(), UTC)
            query = query.where(c.c.uploaded_at < end)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())


class RetentionStore(TableAccess):
    """`partition_retention`: which consultations' Dagster partitions were removed from the
    instance, and which were registered again. A partition counts as live when it was never
    retired, or registered again since: by the bucket sensor for a new version (its status
    is newer than the retirement) or for a reanalysis (`restored_at`)."""

    def retirable(self, *, before: datetime, limit: int) -> list[str]:
        """Live consultations settled before `before`, oldest first: final status, no retry
        pending, not registered again for a reanalysis since `before`."""
        s, r = tables.consultation_status.c, tables.partition_retention.c
        # coalesce: a failed row without a kind or an error is final, not unknown (NULL).
        pending_outage = and_(
            s.status == "failed",
            func.coalesce(s.failure_kind, "") == "outage",
            func.coalesce(s.error, "").not_like(f"%{GAVE_UP}%"),
        )
        query = (
            select(s.consultation_id)
            .select_from(
                tables.consultation_status.outerjoin(
                    tables.partition_retention, r.consultation_id == s.consultation_id
                )
            )
            .where(
                s.status.in_(sorted(FINAL_STATUSES)),
                s.next_attempt_at.is_(None),
                ~pending_outage,
                s.updated_at < before,
                or_(r.restored_at.is_(None), r.restored_at < before),
                or_(
                    r.retired_at.is_(None),
                    r.retired_at < s.updated_at,
                    r.retired_at < r.restored_at,
                ),
            )
            .order_by(s.updated_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def retired_among(self, ids: Sequence[str]) -> list[str]:
        """Those of `ids` whose partition was retired and not registered again since."""
        r = tables.partition_retention.c
        found: list[str] = []
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                query = select(r.consultation_id).where(
                    r.consultation_id.in_(list(ids[start : start + _CHUNK])),
                    r.retired_at.is_not(None),
                    or_(r.restored_at.is_(None), r.restored_at < r.retired_at),
                )
                found.extend(conn.execute(query).scalars())
        return sorted(found)

    def mark_retired(self, ids: Sequence[str], at: datetime, *, before: datetime) -> list[str]:
        """Record the retirement of those of `ids` not registered again for a reanalysis
        since `before` (one may have been, since they were selected); returns those."""
        r = tables.partition_retention
        at, before = (value.astimezone(UTC) for value in (at, before))
        kept: list[str] = []
        with self.engine.begin() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = list(ids[start : start + _CHUNK])
                restored = set(
                    conn.execute(
                        select(r.c.consultation_id).where(
                            r.c.consultation_id.in_(chunk), r.c.restored_at >= before
                        )
                    ).scalars()
                )
                chunk = [i for i in chunk if i not in restored]
                self._upsert(conn, chunk, retired_at=at)
                kept.extend(chunk)
        return kept

    def mark_restored(self, ids: Sequence[str], at: datetime) -> None:
        with self.engine.begin() as conn:
            for start in range(0, len(ids), _CHUNK):
                self._upsert(conn, list(ids[start : start + _CHUNK]), restored_at=at)

    def _upsert(self, conn: Any, ids: list[str], **values: datetime) -> None:
        """Set one column for `ids`, inserting missing rows, atomically (INSERT ... ON
        CONFLICT), so the sensor and a reanalysis stamping the same new ids cannot clash."""
        if not ids:
            return
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        values = _utc_values(values)
        statement = insert(tables.partition_retention).values(
            [{"consultation_id": i, **values} for i in ids]
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["consultation_id"],
                set_={name: statement.excluded[name] for name in values},
            )
        )


class ResultStore(TableAccess):
    """The per-consultation results BI tools read: segments, analyses, quality metrics.
    Analyses and metrics are kept per prompt version (history for comparisons)."""

    def save_segments(self, consultation_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.replace_rows(
            tables.transcript_segments,
            {"consultation_id": consultation_id},
            [{"consultation_id": consultation_id, **row} for row in rows],
        )

    def save_analysis(self, row: Mapping[str, Any]) -> None:
        self._save_versioned(tables.analyses, row)

    def save_quality_metrics(self, row: Mapping[str, Any]) -> None:
        self._save_versioned(tables.quality_metrics, row)

    def save_scorecard_answers(
        self,
        consultation_id: str,
        scorecard_version: str,
        prompt_version: str,
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """One consultation's answers to one scorecard version, replaced as a whole."""
        key = {
            "consultation_id": consultation_id,
            "scorecard_version": scorecard_version,
            "prompt_version": prompt_version,
        }
        now = utcnow()
        self.replace_rows(
            tables.scorecard_answers, key, [{**row, **key, "created_at": now} for row in rows]
        )

    def save_segment_sentiment(
        self, consultation_id: str, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Each segment's sentiment columns (`segment_index` + sentiment fields), in one
        transaction; the segment rows themselves are the transcript step's."""
        if not rows:
            return
        t = tables.transcript_segments
        with self.engine.begin() as conn:
            conn.execute(
                t.update()
                .where(t.c.consultation_id == consultation_id)
                .where(t.c.segment_index == bindparam("index"))
                .values(
                    sentiment=bindparam("score"),
                    sentiment_label=bindparam("label"),
                    sentiment_source=bindparam("source"),
                ),
                [
                    {
                        "index": r["segment_index"],
                        "score": r["sentiment"],
                        "label": r["sentiment_label"],
                        "source": r["sentiment_source"],
                    }
                    for r in rows
                ],
            )

    def save_category_matches(
        self,
        consultation_id: str,
        category_version: str,
        prompt_version: str,
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """Replace this consultation's matches for one categories and prompt version."""
        key = {
            "consultation_id": consultation_id,
            "category_version": category_version,
            "prompt_version": prompt_version,
        }
        now = utcnow()
        self.replace_rows(
            tables.category_matches, key, [{**row, **key, "created_at": now} for row in rows]
        )

    def _save_versioned(self, table: Table, row: Mapping[str, Any]) -> None:
        key = {"consultation_id": row["consultation_id"], "prompt_version": row["prompt_version"]}
        self.replace_rows(table, key, [{**row, "created_at": utcnow()}])


class ReviewStore(TableAccess):
    """`qa_reviews`, `review_errors` and the loaded files (`review_files`): human
    reviewers' answers, replaced file by file."""

    def loaded_tokens(self) -> dict[str, str]:
        t = tables.review_files
        with self.engine.connect() as conn:
            return dict(conn.execute(select(t.c.review_file, t.c.version_token)).all())

    def save_file(
        self,
        review_file: str,
        version_token: str,
        rows: Sequence[Mapping[str, Any]],
        errors: Sequence[Mapping[str, Any]],
    ) -> int:
        """One file's rows and errors replace what it gave before, in one transaction. A
        row for an answer another file gave (same consultation, scorecard, reviewer and
        question) replaces that one: the newest file wins. Returns how many it replaced."""
        q, e = tables.qa_reviews, tables.review_errors
        now = utcnow()
        replaced = 0
        with self.engine.begin() as conn:
            conn.execute(q.delete().where(q.c.review_file == review_file))
            for row in rows:
                result = conn.execute(
                    q.delete().where(_where(q, {name: row[name] for name in _REVIEW_KEY}))
                )
                replaced += result.rowcount or 0
            if rows:
                conn.execute(q.insert(), [{**row, "loaded_at": now} for row in rows])
            conn.execute(e.delete().where(e.c.review_file == review_file))
            if errors:
                conn.execute(e.insert(), [{**error, "loaded_at": now} for error in errors])
            f = tables.review_files
            conn.execute(f.delete().where(f.c.review_file == review_file))
            conn.execute(
                f.insert().values(
                    review_file=review_file,
                    version_token=version_token,
                    rows_loaded=len(rows),
                    errors=len(errors),
                    loaded_at=now,
                )
            )
        return replaced

    def reviews(self) -> list[dict[str, Any]]:
        return self.fetch_rows(tables.qa_reviews)

    def reviewed_answers(self) -> list[dict[str, Any]]:
        """`scorecard_answers` of reviewed consultations, with the analyzer that answered."""
        s, a, q = tables.scorecard_answers, tables.analyses, tables.qa_reviews
        query = (
            select(
                s.c.consultation_id,
                s.c.scorecard_version,
                s.c.prompt_version,
                s.c.question_id,
                s.c.answer,
                s.c.score,
                s.c.max_score,
                a.c.analyzer,
            )
            .join(
                a,
                and_(
                    a.c.consultation_id == s.c.consultation_id,
                    a.c.prompt_version == s.c.prompt_version,
                ),
            )
            .where(s.c.consultation_id.in_(select(q.c.consultation_id).distinct()))
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def answers_watermark(self) -> str:
        """Changes whenever a reviewed consultation gets new scorecard answers: when to
        compute the calibration again."""
        s, q = tables.scorecard_answers, tables.qa_reviews
        query = select(func.max(s.c.created_at), func.count()).where(
            s.c.consultation_id.in_(select(q.c.consultation_id).distinct())
        )
        with self.engine.connect() as conn:
            latest, count = conn.execute(query).one()
        return f"{latest}|{count}"

    def save_calibration(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """The calibration as a whole: every row replaced in one transaction."""
        t = tables.scorecard_calibration
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(t.delete())
            if rows:
                conn.execute(t.insert(), [{**row, "computed_at": now} for row in rows])


_REVIEW_KEY = ("consultation_id", "scorecard_version", "reviewer", "question_id")


_ANSWER_COLUMNS = ("consultation_id", "scorecard_version", "prompt_version", "question_id",
                   "score", "max_score", "na")  # fmt: skip
_CATEGORY_COLUMNS = ("consultation_id", "category_version", "prompt_version", "category_id",
                     "severity", "created_at")  # fmt: skip


@dataclass(frozen=True)
class DayFacts:
    """What the daily aggregates read for a span of days: one row per consultation (its
    context, status and newest quality_metrics row, with that analysis's resolution), the
    answers and category matches of those newest rows, and every analysis's cost."""

    consultations: pd.DataFrame
    answers: pd.DataFrame
    categories: pd.DataFrame


class AggregateStore(TableAccess):
    """The supervisor aggregates (agent_daily_scorecards, team_daily_trends, review_queue):
    the consultations of a span of days and what changed since a look; rows per day."""

    @staticmethod
    def _in_span(start: datetime, end: datetime) -> Any:
        c = tables.consultations.c
        # The day is the conversation's (recorded_at), else the upload's.
        return select(c.consultation_id).where(
            or_(
                and_(c.recorded_at >= start, c.recorded_at < end),
                and_(c.recorded_at.is_(None), c.uploaded_at >= start, c.uploaded_at < end),
            )
        )

    def day_facts(self, start: datetime, end: datetime, *, scores_only: bool = False) -> DayFacts:
        """`scores_only`: without answers and category matches (rolling windows)."""
        import pandas as pd

        ids = self._in_span(start, end)
        c, s, q = tables.consultations, tables.consultation_status, tables.quality_metrics
        a, sa, cm = tables.analyses, tables.scorecard_answers, tables.category_matches
        with self.engine.connect() as conn:

            def frame(query: Any) -> pd.DataFrame:
                return pd.read_sql_query(query, conn)

            base = frame(
                select(
                    c.c.consultation_id, c.c.source_key, c.c.agent_id, c.c.agent_name,
                    c.c.team, c.c.recorded_at, c.c.uploaded_at, c.c.report_location,
                    s.c.status,
                ).outerjoin(s, s.c.consultation_id == c.c.consultation_id)
                .where(c.c.consultation_id.in_(ids))
            )  # fmt: skip
            metrics = frame(select(q).where(q.c.consultation_id.in_(ids)))
            analyses = frame(
                select(
                    a.c.consultation_id, a.c.prompt_version, a.c.resolution_status,
                    a.c.cost_usd,
                ).where(a.c.consultation_id.in_(ids))
            )  # fmt: skip
            answers = pd.DataFrame(columns=list(_ANSWER_COLUMNS)) if scores_only else frame(
                select(
                    sa.c.consultation_id, sa.c.scorecard_version, sa.c.prompt_version,
                    sa.c.question_id, sa.c.score, sa.c.max_score, sa.c.na,
                ).where(sa.c.consultation_id.in_(ids))
            )  # fmt: skip
            categories = pd.DataFrame(columns=list(_CATEGORY_COLUMNS)) if scores_only else frame(
                select(
                    cm.c.consultation_id, cm.c.category_version, cm.c.prompt_version,
                    cm.c.category_id, cm.c.severity, cm.c.created_at,
                ).where(cm.c.consultation_id.in_(ids))
            )  # fmt: skip
        # A reanalysis adds rows: the newest quality_metrics row per consultation counts.
        if not metrics.empty:
            metrics = metrics.sort_values("created_at").drop_duplicates(
                "consultation_id", keep="last"
            )
        cost = analyses.groupby("consultation_id", as_index=False)["cost_usd"].sum(min_count=1)
        latest = metrics.merge(
            analyses.drop(columns="cost_usd"),
            on=["consultation_id", "prompt_version"],
            how="left",
        )
        facts = base.merge(latest, on="consultation_id", how="left").merge(
            cost, on="consultation_id", how="left"
        )
        keys = latest[["consultation_id", "scorecard_version", "prompt_version"]]
        answers = answers.merge(keys, on=list(keys.columns), how="inner")
        categories = categories.merge(
            latest[["consultation_id", "prompt_version"]], on=["consultation_id", "prompt_version"]
        )
        if not categories.empty:  # the newest categories version matched per consultation
            newest = categories.groupby("consultation_id")["created_at"].transform("max")
            categories = categories[categories["created_at"] == newest]
        return DayFacts(facts, answers, categories)

    def changed_since(
        self, metrics_after: datetime | None, status_after: datetime | None
    ) -> tuple[list[tuple[datetime | None, datetime | None]], datetime | None, datetime | None]:
        """(recorded_at, uploaded_at) of consultations scored or given a final status since
        the two watermarks, and the new watermarks."""
        c, s, q = tables.consultations, tables.consultation_status, tables.quality_metrics
        scored = select(q.c.consultation_id)
        finished = select(s.c.consultation_id).where(s.c.status.in_(sorted(FINAL_STATUSES)))
        if metrics_after is not None:
            scored = scored.where(q.c.created_at > metrics_after)
        if status_after is not None:
            finished = finished.where(s.c.updated_at > status_after)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.c.recorded_at, c.c.uploaded_at).where(
                    or_(c.c.consultation_id.in_(scored), c.c.consultation_id.in_(finished))
                )
            ).all()
            top_metrics = conn.execute(select(func.max(q.c.created_at))).scalar()
            top_status = conn.execute(select(func.max(s.c.updated_at))).scalar()
        return (
            [(r[0], r[1]) for r in rows],
            top_metrics if top_metrics is not None else metrics_after,
            top_status if top_status is not None else status_after,
        )

    def critical_reviews_since(
        self,
        after: datetime,
        after_key: tuple[date, str] | None,
        scored_after: datetime,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Review-queue rows with a failed critical question computed after (`after`,
        `after_key` = day, consultation), of consultations scored after `scored_after`: a
        recomputed old day (a backfill) does not bring back what was scored before."""
        t, q = tables.review_queue, tables.quality_metrics
        at = after.astimezone(UTC)
        later = t.c.computed_at > at
        if after_key is not None:
            day, consultation_id = after_key
            later = or_(
                later,
                and_(
                    t.c.computed_at == at,
                    or_(
                        t.c.day > day,
                        and_(t.c.day == day, t.c.consultation_id > consultation_id),
                    ),
                ),
            )
        scored = select(q.c.consultation_id).where(q.c.created_at > scored_after.astimezone(UTC))
        query = (
            select(t)
            .where(t.c.failed_critical.is_(True), later, t.c.consultation_id.in_(scored))
            .order_by(t.c.computed_at, t.c.day, t.c.consultation_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def rows_between(self, table: Table, first: date, last: date) -> list[dict[str, Any]]:
        """An aggregate table's rows of the days first..last, by day."""
        query = select(table).where(table.c.day >= first, table.c.day <= last)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(table.c.day))]

    def replace_days(
        self, table: Table, days: Sequence[date], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """The rows of these days replaced by `rows`, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.day.in_(list(days))))
            if rows:
                conn.execute(table.insert(), [_utc_values(r) for r in rows])


class HealthStore(TableAccess):
    """`service_health`: the state of each service the pipeline depends on, as transitions."""

    def latest(self, service: str) -> dict[str, Any] | None:
        t = tables.service_health
        query = select(t).where(t.c.service == service).order_by(t.c.event_id.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return dict(row._mapping) if row else None

    def latest_all(self) -> list[dict[str, Any]]:
        """The latest event of every service."""
        t = tables.service_health
        last = select(func.max(t.c.event_id)).group_by(t.c.service)
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.event_id.in_(last)).order_by(t.c.service))
            return [dict(row._mapping) for row in rows]

    def observe(self, service: str, state: str, *, healthy: str, detail: str | None = None) -> bool:
        """Record `state` if it differs from the service's latest; a healthy state with no
        history is not recorded (no row = healthy). Returns whether a row was written."""
        latest = self.latest(service)
        if (latest["state"] if latest else healthy) == state:
            return False
        self.write_many(
            tables.service_health,
            [{"service": service, "state": state, "detail": detail, "occurred_at": utcnow()}],
        )
        return True


def retry_wait(attempts: int) -> timedelta:
    """How long a failed alert waits before its next attempt."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


class AlertStore(TableAccess):
    """`alert_outbox`: alerts per channel, pending until the channel accepts them."""

    def enqueue(self, channel: str, items: Sequence[Mapping[str, Any]]) -> int:
        """Queue items ({kind, dedup_key, payload}) for a channel; one already queued (same
        dedup key) is skipped. Returns how many were new."""
        t = tables.alert_outbox
        if not items:
            return 0
        keys = [i["dedup_key"] for i in items]
        with self.engine.begin() as conn:
            known: set[str] = set()
            for start in range(0, len(keys), _CHUNK):
                known |= set(
                    conn.execute(
                        select(t.c.dedup_key).where(
                            t.c.channel == channel, t.c.dedup_key.in_(keys[start : start + _CHUNK])
                        )
                    ).scalars()
                )
            now = utcnow()
            rows = []
            for item in items:
                if item["dedup_key"] in known:
                    continue
                known.add(item["dedup_key"])  # and once within this call
                rows.append(
                    {
                        "channel": channel,
                        "kind": item["kind"],
                        "dedup_key": item["dedup_key"],
                        "payload": item["payload"],
                        "status": "pending",
                        "attempts": 0,
                        "created_at": now,
                    }
                )
            if rows:
                conn.execute(t.insert(), [_utc_values(r) for r in rows])
        return len(rows)

    def pending(self, channel: str, now: datetime, limit: int = 1000) -> list[dict[str, Any]]:
        """The channel's alerts to send now: new ones, and failed ones whose wait is over
        (1 min after the first failure, doubling to at most an hour)."""
        t = tables.alert_outbox
        query = (
            select(t)
            .where(t.c.channel == channel, t.c.status == "pending")
            .order_by(t.c.alert_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        return [
            r for r in rows
            if not r["attempts"] or r["last_attempt_at"] is None
            or as_utc(r["last_attempt_at"]) + retry_wait(r["attempts"]) <= now
        ]  # fmt: skip

    def mark_sent(self, alert_ids: Sequence[int]) -> None:
        now = utcnow()
        self._attempted(alert_ids, status="sent", sent_at=now, last_attempt_at=now, last_error=None)

    def mark_failed(self, alert_ids: Sequence[int], error: str, *, give_up_after: int) -> None:
        """One more failed attempt; after `give_up_after` attempts the alert is `failed`."""
        self._attempted(
            alert_ids, give_up_after=give_up_after, last_error=error, last_attempt_at=utcnow()
        )

    def _attempted(
        self, alert_ids: Sequence[int], *, give_up_after: int | None = None, **values: Any
    ) -> None:
        """Count one more attempt and set `values`, in one transaction."""
        t = tables.alert_outbox
        with self.engine.begin() as conn:
            for start in range(0, len(alert_ids), _CHUNK):
                chunk = t.c.alert_id.in_(list(alert_ids[start : start + _CHUNK]))
                conn.execute(
                    t.update().where(chunk).values(attempts=t.c.attempts + 1, **_utc_values(values))
                )
                if give_up_after is not None:
                    conn.execute(
                        t.update()
                        .where(chunk, t.c.attempts >= give_up_after)
                        .values(status="failed")
                    )


class AnalysisCacheStore(TableAccess):
    """`analysis_cache`: answers by the hash of everything that determines them."""

    def get(self, cache_key: str) -> dict[str, Any] | None:
        rows = self.fetch_rows(tables.analysis_cache, cache_key=cache_key)
        return rows[0] if rows else None

    def put(self, cache_key: str, values: Mapping[str, Any]) -> None:
        self.upsert(
            tables.analysis_cache, {"cache_key": cache_key}, {**values, "created_at": utcnow()}
        )


def _utc_values(row: Mapping[str, Any]) -> dict[str, Any]:
    # SQLite keeps a datetime's wall-clock time and drops its offset: store UTC everywhere.
    return {
        name: value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo else value
        for name, value in row.items()
    }


def _where(table: Table, match: Mapping[str, Any]) -> Any:
    return and_(*(table.c[name] == value for name, value in match.items()))
