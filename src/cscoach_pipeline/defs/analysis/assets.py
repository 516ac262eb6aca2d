"""The analysis and scoring assets, built from the configured prompt version and analyzer.

One multi-asset step materializes both `consultation_analysis` and `quality_metrics`, so a
backfill run of 100 consultations records each one as it finishes; both are skippable, and a
consultation without speech materializes neither."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MetadataValue,
    RetryRequested,
    multi_asset,
)

from cscoach_pipeline.defs.analysis.analyse import analyse_transcript, analysis_artifact
from cscoach_pipeline.defs.analysis.cache import AnalysisCache
from cscoach_pipeline.defs.analysis.prompts import PromptTemplate, prompt_for_run
from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.partitions import CONSULTATION_GROUP, consultation_partitions
from cscoach_pipeline.defs.privacy.assets import transcript
from cscoach_pipeline.defs.privacy.redaction import TRANSCRIPT_ARTIFACT
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.recovery.steps import consultation_step, record_status
from cscoach_pipeline.defs.scoring.report import REPORT_ARTIFACT, coaching_report
from cscoach_pipeline.defs.scoring.scores import score_consultation
from cscoach_pipeline.defs.speech.transcript import Transcript
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.errors import ConsultationInputError

BACKFILL_PARTITIONS_PER_RUN = 100
RUN_COST_TAG = "cscoach/cost_usd"


def build_analysis_assets(prompt_version: str, analyzer_name: str) -> AssetsDefinition:
    """Both assets carry the active prompt version as their code version, so switching it
    marks every partition out of date; their kind names the analyzer that answers."""
    scored = {
        "group_name": CONSULTATION_GROUP,
        "code_version": f"prompt-{prompt_version}",
        "skippable": True,
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
                description="Overall score from the rubric plus talk-time, pace, silence, "
                "interruption and latency metrics from the timed transcript.",
                **scored,
            ),
        ],
        partitions_def=consultation_partitions,
        # A backfill of thousands of consultations runs 100 per run (one process start-up
        # per 100, not per consultation), analysed concurrently within the rate limit.
        backfill_policy=BackfillPolicy.multi_run(
            max_partitions_per_run=BACKFILL_PARTITIONS_PER_RUN
        ),
        # Dagster concurrency pool: cap analysis steps across runs (`dagster instance
        # concurrency set gemini N`), on top of the client-side rate limiter in each process.
        pool="gemini",
    )
    def analyse_and_score(
        context: AssetExecutionContext,
        bucket: BucketResource,
        warehouse: WarehouseResource,
        analyzer: AnalyzerResource,
        recovery: RecoveryResource,
    ) -> Iterator[AssetMaterialization]:
        yield from analyse_and_score_partitions(context, bucket, warehouse, analyzer)

    return analyse_and_score


def analyse_and_score_partitions(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    analyzer: AnalyzerResource,
) -> Iterator[AssetMaterialization]:
    try:
        prompt = prompt_for_run(context.run.tags, analyzer.prompt_version)
    except ValueError as exc:
        prompt, prompt_error = None, str(exc)
    else:
        prompt_error = ""

    def one(key: str) -> list[AssetMaterialization]:
        with consultation_step(context, warehouse, "consultation_analysis", key):
            if prompt is None:  # an unknown version in the run tag fails every consultation
                raise ConsultationInputError(prompt_error)
        return _analyse_and_score(context, key, prompt, bucket, warehouse, analyzer)

    keys = context.partition_keys
    if len(keys) == 1:  # the sensor's per-consultation runs: failures fail the run as is
        yield from one(keys[0])
        return
    failures: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, analyzer.max_concurrent)) as workers:
        futures = {workers.submit(one, key): key for key in keys}
        for future in as_completed(futures):
            key = futures[future]
            try:
                yield from future.result()
            except Failure as exc:
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


def _analyse_and_score(
    context: AssetExecutionContext,
    key: str,
    prompt_version: PromptTemplate,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    analyzer: AnalyzerResource,
) -> list[AssetMaterialization]:
    """Analyse, then score, one consultation; nothing when it has no speech or was never
    transcribed (a reanalysis over "all partitions" includes those: they keep their reason)."""
    with consultation_step(context, warehouse, "consultation_analysis", key) as source:
        artifacts = bucket.artifacts(source.consultation_id)
        stored = artifacts.store.read_optional(artifacts.key(TRANSCRIPT_ARTIFACT))
        clean = Transcript.model_validate_json(stored) if stored is not None else None
        if clean is None or not clean.segments:
            context.log.info(f"{key}: {'no speech' if clean else 'never transcribed'}, skipped")
            return []
        prompt = prompt_version.for_consultation(key)
        cache = AnalysisCache(warehouse.analysis_cache)
        analysed = analyse_transcript(clean, prompt, analyzer, cache, artifacts)
        warehouse.results.save_analysis(analysed.row(source.consultation_id))
        run_total = add_to_run_cost(context, analysed.cost_usd)
    analysis_metadata = {**analysed.metadata(), "run_cost_usd": run_total}

    with consultation_step(context, warehouse, "quality_metrics", key) as source:
        analysis = ConsultationAnalysis.model_validate(
            artifacts.read_json(analysis_artifact(prompt.version))
        )
        score = score_consultation(clean, analysis)
        warehouse.results.save_quality_metrics(
            score.row(source.consultation_id, prompt.version, prompt.variant)
        )
        report_key = artifacts.write_text(
            REPORT_ARTIFACT, coaching_report(source.shown_key, score.overall, analysis)
        )
        report_location = bucket.store().locate(report_key)
        warehouse.consultations.update(source.consultation_id, report_location=report_location)
        record_status(context, warehouse, source, "succeeded", "quality_metrics")
    score_metadata: dict[str, Any] = {
        **score.metadata(),
        "prompt_version": prompt.version,
        "summary": MetadataValue.md(analysis.summary),
        "report": MetadataValue.path(report_location),
    }
    return [
        AssetMaterialization("consultation_analysis", partition=key, metadata=analysis_metadata),
        AssetMaterialization("quality_metrics", partition=key, metadata=score_metadata),
    ]


_run_cost_lock = threading.Lock()


def add_to_run_cost(context: AssetExecutionContext, cost: float | None) -> float:
    """Keep the run's running LLM cost in a run tag, visible on the run page (a backfill
    run adds up its consultations from several threads)."""
    with _run_cost_lock:
        run = context.instance.get_run_by_id(context.run_id)
        total = float((run.tags if run else {}).get(RUN_COST_TAG, 0.0)) + (cost or 0.0)
        context.instance.add_run_tags(context.run_id, {RUN_COST_TAG: f"{total:.6f}"})
    return round(total, 6)
