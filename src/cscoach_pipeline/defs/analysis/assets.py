"""The analysis and scoring assets, built from the configured prompt version and analyzer.

One multi-asset step materializes `consultation_analysis`, `quality_metrics` and
`call_categories`, so a backfill run of 100 consultations records each one as it finishes;
all are skippable, and a consultation without speech materializes none."""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

from dagster import (
    AssetCheckEvaluation,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MetadataValue,
    RetryRequested,
    multi_asset,
)

from cscoach_pipeline.defs.analysis.analyse import analyse_transcript
from cscoach_pipeline.defs.analysis.cache import AnalysisCache
from cscoach_pipeline.defs.analysis.checks import ANALYSIS_VALID, analysis_validity
from cscoach_pipeline.defs.analysis.prompts import PromptTemplate, prompt_for_run
from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.defs.analysis.run_cost import add_to_run_cost
from cscoach_pipeline.defs.checks import PendingCheck, consultation_checks, guarded_check
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.partitions import (
    ANALYSIS_QUEUE,
    CONSULTATION_GROUP,
    consultation_partitions,
)
from cscoach_pipeline.defs.privacy.assets import transcript
from cscoach_pipeline.defs.privacy.redaction import read_redacted_transcript
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.scoring.categories import load_categories, matches_metadata
from cscoach_pipeline.defs.scoring.scorecards import load_scorecard, scorecard_questions
from cscoach_pipeline.defs.scoring.scores import score_and_report
from cscoach_pipeline.defs.scoring.sentiment import SENTIMENT_METHOD
from cscoach_pipeline.defs.steps import (
    consultation_step,
    is_superseded,
    record_status,
    run_members,
)
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.errors import ConsultationInputError

BACKFILL_PARTITIONS_PER_RUN = 100


def build_analysis_assets(
    prompt_version: str,
    analyzer_name: str,
    scorecard: str = "inbound/v1",
    categories: str = "v1",
) -> AssetsDefinition:
    """The assets carry what decides them as their code version (prompt, scorecard,
    categories, sentiment lexicon), so switching one marks every partition out of date;
    the analysis's kind names the analyzer."""
    shared = {"group_name": CONSULTATION_GROUP, "skippable": True}
    scored = {
        **shared,
        "code_version": f"prompt-{prompt_version}+scorecard-{scorecard}+{SENTIMENT_METHOD}",
    }

    @multi_asset(
        name="analyse_and_score",
        specs=[
            AssetSpec(
                "consultation_analysis",
                deps=[transcript],
                kinds={analyzer_name},
                description="Validated coaching analysis (Gemini, or offline local rules), one "
                "row per prompt version.",
                **scored,
            ),
            AssetSpec(
                "quality_metrics",
                deps=["consultation_analysis"],
                kinds={"sql"},
                description="Overall score from the scorecard's weighted questions (pass "
                "state, answers in scorecard_answers) plus talk-time, pace, silence, "
                "interruption and latency metrics from the timed transcript.",
                **scored,
            ),
            AssetSpec(
                "call_categories",
                deps=["consultation_analysis"],
                kinds={"sql"},
                description="Call categories that fired (cancellation intent, escalation, "
                "complaint, long hold, greeting missing, ...) with their evidence segment "
                "and time, in category_matches.",
                code_version=f"prompt-{prompt_version}+categories-{categories}+{SENTIMENT_METHOD}",
                **shared,
            ),
        ],
        partitions_def=consultation_partitions,
        check_specs=consultation_checks(
            "consultation_analysis",
            [(ANALYSIS_VALID, "evidence quotes found in the transcript, no PII in its text")],
        ),
        # Checks are logged per consultation (a backfill run holds 100), not returned as
        # outputs: with can_subset they are optional outputs.
        can_subset=True,
        # A backfill of thousands of consultations runs 100 per run (one process start-up
        # per 100, not per consultation), analysed concurrently within the rate limit.
        backfill_policy=BackfillPolicy.multi_run(
            max_partitions_per_run=BACKFILL_PARTITIONS_PER_RUN
        ),
        # Dagster concurrency pool: cap analysis steps across runs (`dagster instance
        # concurrency set gemini N`), on top of the client-side rate limiter in each process.
        pool="gemini",
        op_tags=ANALYSIS_QUEUE,
    )
    def analyse_and_score(
        context: AssetExecutionContext,
        bucket: BucketResource,
        warehouse: WarehouseResource,
        analyzer: AnalyzerResource,
        recovery: RecoveryResource,
    ) -> Iterator[AssetMaterialization | AssetCheckEvaluation]:
        yield from analyse_and_score_partitions(context, bucket, warehouse, analyzer)

    return analyse_and_score


def analyse_and_score_partitions(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    analyzer: AnalyzerResource,
) -> Iterator[AssetMaterialization | AssetCheckEvaluation]:
    try:
        prompt: PromptTemplate | ConsultationInputError = prompt_for_run(
            context.run.tags, analyzer.prompt_version
        )
    except ValueError as exc:  # an unknown version in the run tag
        prompt = ConsultationInputError(str(exc))

    members = run_members(context)
    versions = dict(members) if members is not None else {}
    keys = [key for key, _ in members] if members is not None else context.partition_keys

    def one(key: str) -> list[AssetMaterialization | PendingCheck]:
        return _analyse_and_score(
            context, key, prompt, bucket, warehouse, analyzer, versions.get(key)
        )

    if len(keys) == 1 and members is None:  # one consultation: failures fail the run as is
        yield from _emit(context, one(keys[0]))
        return
    failures: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, analyzer.max_concurrent)) as workers:
        futures = {workers.submit(one, key): key for key in keys}
        for future in as_completed(futures):
            key = futures[future]
            try:
                yield from _emit(context, future.result())
            except Failure as exc:
                if is_superseded(exc):
                    context.log.info(f"{key}: {exc.description}")
                    continue
                failures[key] = exc.description or "failed"
            except RetryRequested:
                failures[key] = "the bucket was unavailable"
            except Exception as exc:
                failures[key] = f"{type(exc).__name__}: {exc}"
    if failures:
        listed = "; ".join(f"{k}: {v}" for k, v in sorted(failures.items())[:10])
        raise Failure(
            description=f"{len(failures)} of {len(keys)} consultations failed ({listed})",
            metadata={"failed": MetadataValue.json(failures)},
        )


def _emit(
    context: AssetExecutionContext, events: list[AssetMaterialization | PendingCheck]
) -> Iterator[AssetMaterialization | AssetCheckEvaluation]:
    """In order: a check is made once the materialization before it has been recorded
    (Dagster records an event as it is yielded)."""
    for event in events:
        yield event.evaluation(context.instance) if isinstance(event, PendingCheck) else event


def _analyse_and_score(
    context: AssetExecutionContext,
    key: str,
    prompt: PromptTemplate | ConsultationInputError,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    analyzer: AnalyzerResource,
    version: int | None = None,
) -> list[AssetMaterialization | PendingCheck]:
    """Analyse, then score, one consultation; nothing when it has no speech or was never
    transcribed (a reanalysis over "all partitions" includes those: they keep their reason).
    `version`: what a batch run was started for (a newer file's run owns the results)."""
    with consultation_step(context, warehouse, "consultation_analysis", key, version) as source:
        artifacts = bucket.artifacts(source.consultation_id)
        clean = read_redacted_transcript(artifacts)
        if clean is None or not clean.segments:
            context.log.info(f"{key}: {'no speech' if clean else 'never transcribed'}, skipped")
            return []
        if isinstance(prompt, ConsultationInputError):
            raise prompt
        scorecard = load_scorecard(analyzer.scorecard)
        # Prompts that ask the scorecard's questions get them (and the cache key with them).
        arm = prompt.for_consultation(key).with_scorecard(
            scorecard.label, scorecard_questions(scorecard)
        )
        cache = AnalysisCache(warehouse.analysis_cache)
        analysed = analyse_transcript(clean, arm, analyzer, cache, artifacts, warehouse.health)
        warehouse.results.save_analysis(analysed.row(source.consultation_id))
        validity = guarded_check(
            ANALYSIS_VALID,
            lambda: analysis_validity(analysed.outcome.analysis, clean, analysed.answer_pii),
        )
        run_total = add_to_run_cost(context.instance, context.run_id, analysed.cost_usd)

    started = time.perf_counter()
    with consultation_step(context, warehouse, "quality_metrics", key, version) as source:
        category_set = load_categories(analyzer.categories)
        scored = score_and_report(
            clean, arm.version, scorecard, category_set, artifacts, source.shown_key
        )
        warehouse.results.save_quality_metrics(
            scored.score.row(source.consultation_id, arm.version, arm.variant)
        )
        warehouse.results.save_segment_sentiment(
            source.consultation_id, [s.row() for s in scored.score.sentiments]
        )
        warehouse.results.save_category_matches(
            source.consultation_id,
            category_set.version,
            arm.version,
            [m.row() for m in scored.categories],
        )
        warehouse.results.save_scorecard_answers(
            source.consultation_id,
            scorecard.label,
            arm.version,
            scored.score.scorecard.rows(source.consultation_id, arm.version),
        )
        warehouse.consultations.update(
            source.consultation_id, report_location=scored.report_location
        )
        record_status(context, warehouse, source, "succeeded", "quality_metrics")
        who = warehouse.consultations.get(source.consultation_id)
    # Beside the score, who handled it (filterable context for a supervisor).
    handled_by = {k: who[k] for k in ("agent_id", "agent_name", "team") if who.get(k)}
    return [
        AssetMaterialization(
            "consultation_analysis",
            partition=key,
            metadata={**analysed.metadata(), "run_cost_usd": run_total},
        ),
        PendingCheck(AssetKey("consultation_analysis"), key, validity),
        AssetMaterialization(
            "quality_metrics",
            partition=key,
            metadata={
                **scored.score.metadata(),
                **handled_by,
                "source_key": source.shown_key,
                "prompt_version": arm.version,
                "summary": MetadataValue.md(scored.analysis.summary),
                "report": MetadataValue.path(scored.report_location),
                # The report itself, readable on the partition's page in the UI.
                "coaching_report": MetadataValue.md(scored.report),
                "elapsed_s": round(time.perf_counter() - started, 3),
            },
        ),
        AssetMaterialization(
            "call_categories",
            partition=key,
            metadata={
                **matches_metadata(scored.categories),
                "category_version": category_set.version,
                "prompt_version": arm.version,
            },
        ),
    ]
