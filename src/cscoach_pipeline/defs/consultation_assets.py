"""The per-consultation assets. Thin: each wires resources to one piece of lib/ and emits the
metadata a supervisor reads in the Dagster UI. Artifacts live in the bucket under
`artifacts/<consultation_id>/`; the BI tables are written idempotently per partition."""

import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryRequested,
    asset,
    multi_asset,
)

from cscoach_pipeline.defs.analysis.analyzers import AnalysisError, AnalysisOutcome
from cscoach_pipeline.defs.analysis.cache import analysis_cache_key
from cscoach_pipeline.defs.analysis.prompts import load_prompt
from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.defs.analysis.schema import (
    ANALYSIS_SCHEMA_VERSION,
    RUBRIC_CRITERIA,
    ConsultationAnalysis,
    overall_score,
)
from cscoach_pipeline.defs.ingest.context import (
    ConsultationContext,
    fields_from_key,
    merge_context,
    parse_sidecar,
    sidecar_keys,
)
from cscoach_pipeline.defs.ingest.file_types import (
    FileType,
    extension_of,
    guess_file_type,
    unsupported_reason,
)
from cscoach_pipeline.defs.ingest.partition_keys import display_key
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.ingest.storage import ObjectNotFound, ObjectStore, StoredObject
from cscoach_pipeline.defs.jobs import CONSULTATION_GROUP, PROMPT_VERSION_TAG
from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.privacy.pii import redact_segments
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.recovery.steps import consultation_step, record_status
from cscoach_pipeline.defs.scoring.metrics import compute_call_metrics
from cscoach_pipeline.defs.speech.media import MediaError, extract_audio, probe_media, read_wav
from cscoach_pipeline.defs.speech.resources import SpeechToTextResource
from cscoach_pipeline.defs.speech.text_import import parse_text_consultation
from cscoach_pipeline.defs.speech.transcribe import transcribe_recording
from cscoach_pipeline.defs.speech.transcript import Transcript
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource, utcnow
from cscoach_pipeline.errors import ConsultationInputError, UnsupportedFileType
from cscoach_pipeline.settings import load_settings

AUDIO_ARTIFACT = "audio.wav"
RAW_TRANSCRIPT_ARTIFACT = "private/transcript.raw.json"  # unredacted: never leaves the bucket
TRANSCRIPT_ARTIFACT = "transcript.json"
REPORT_ARTIFACT = "report.md"

_common = {
    "partitions_def": consultation_partitions,
    "group_name": CONSULTATION_GROUP,
}


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:,.1f} MB"


@asset(
    **_common,
    kinds={"file"},
    code_version="1",
    description="The original object in the bucket: key, size, sha256, type, upload time.",
)
def consultation_upload(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    recovery: RecoveryResource,
) -> MaterializeResult:
    started = time.perf_counter()
    with consultation_step(context, warehouse, "consultation_upload") as source:
        store = bucket.store()
        record_status(context, warehouse, source, "processing", "consultation_upload")
        try:
            obj = store.stat(source.source_key)
        except ObjectNotFound as exc:
            raise ConsultationInputError(
                "the file was removed from the bucket before it could be processed"
            ) from exc
        file_type = guess_file_type(obj.key)
        if file_type is None:
            raise UnsupportedFileType(unsupported_reason(obj.key))
        if obj.size == 0:
            raise ConsultationInputError("empty file (0 bytes)")
        if obj.size > bucket.max_file_bytes:
            raise ConsultationInputError(
                f"file is {_mb(obj.size)}, above the {_mb(bucket.max_file_bytes)} limit "
                "(CSCOACH_MAX_FILE_MB)"
            )
        sha256 = store.sha256(obj.key)
        context_info, context_sources, context_warnings = gather_context(
            store, obj, bucket.key_pattern
        )
        for warning in context_warnings:
            context.log.warning(warning)
        artifacts = bucket.artifacts(source.consultation_id)
        warehouse.replace_rows(
            tables.consultations,
            {"consultation_id": source.consultation_id},
            [
                {
                    "consultation_id": source.consultation_id,
                    "source_key": source.shown_key,
                    "file_type": file_type.value,
                    "extension": extension_of(obj.key),
                    "content_sha256": sha256,
                    "size_bytes": obj.size,
                    "version": source.version,
                    "uploaded_at": obj.modified,
                    **context_info.model_dump(),
                    "context_sources": context_sources,
                    "artifacts_prefix": artifacts.prefix,
                    "updated_at": utcnow(),
                }
            ],
        )
    return MaterializeResult(
        metadata={
            "source_key": source.shown_key,
            "location": MetadataValue.path(display_key(store.locate(obj.key))),
            "size_bytes": obj.size,
            "content_sha256": sha256,
            "file_type": file_type.value,
            "version": source.version,
            "uploaded_at": obj.modified.isoformat(),
            **{
                name: str(value)
                for name, value in context_info.model_dump().items()
                if value is not None
            },
            "context_warnings": "; ".join(context_warnings),
            "elapsed_s": round(time.perf_counter() - started, 3),
        },
    )


@asset(
    **_common,
    deps=[consultation_upload],
    kinds={"ffmpeg"},
    code_version="1",
    description="16 kHz PCM audio; two-channel calls keep agent and customer channels apart.",
)
def consultation_audio(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    recovery: RecoveryResource,
) -> MaterializeResult:
    settings = load_settings()
    with consultation_step(context, warehouse, "consultation_audio") as source:
        row = warehouse.fetch_rows(tables.consultations, consultation_id=source.consultation_id)[0]
        if row["file_type"] == FileType.TEXT:
            return MaterializeResult(metadata={"skipped": "text consultation: no audio to extract"})
        started = time.perf_counter()
        store = bucket.store()
        with tempfile.TemporaryDirectory(prefix="cscoach-audio-") as tmp:
            original = Path(tmp) / f"original{row['extension']}"
            store.download_to(source.source_key, original)
            info = probe_media(original, settings.ffmpeg_timeout_s)
            if not info.has_audio:
                raise MediaError(
                    "the video has no audio track"
                    if info.has_video
                    else "the file has no audio stream"
                )
            file_type = FileType.VIDEO if info.has_video else FileType.AUDIO
            channels = 2 if info.audio_channels >= 2 else 1
            wav = Path(tmp) / AUDIO_ARTIFACT
            extract_audio(original, wav, channels, settings.ffmpeg_timeout_s)
            samples = read_wav(wav)
            duration_s = samples.shape[1] / 16_000
            if duration_s < 0.1:
                raise MediaError(f"the recording is too short to transcribe ({duration_s:.2f} s)")
            artifacts = bucket.artifacts(source.consultation_id)
            store.upload_file(wav, artifacts.key(AUDIO_ARTIFACT), "audio/wav")
        warehouse.upsert(
            tables.consultations,
            {"consultation_id": source.consultation_id},
            {
                "file_type": file_type.value,
                "duration_s": round(duration_s, 3),
                "channels": channels,
                "updated_at": utcnow(),
            },
        )
    return MaterializeResult(
        metadata={
            "duration_s": round(duration_s, 2),
            "channels": channels,
            "source_channels": info.audio_channels,
            "file_type": file_type.value,
            "container": info.format_name,
            "audio_codec": info.audio_codec or "",
            "video_codec": info.video_codec or "",
            "artifact": MetadataValue.path(artifacts.locate(AUDIO_ARTIFACT)),
            "elapsed_s": round(time.perf_counter() - started, 3),
        }
    )


@asset(
    **_common,
    deps=[consultation_audio],
    kinds={"whisper"},
    code_version="1",
    description="Unredacted transcript (Whisper or imported text), kept only in the bucket's "
    "private artifacts area.",
)
def raw_transcript(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    speech_to_text: SpeechToTextResource,
    recovery: RecoveryResource,
) -> MaterializeResult:
    with consultation_step(context, warehouse, "raw_transcript") as source:
        row = warehouse.fetch_rows(tables.consultations, consultation_id=source.consultation_id)[0]
        store = bucket.store()
        artifacts = bucket.artifacts(source.consultation_id)
        started = time.perf_counter()
        if row["file_type"] == FileType.TEXT:
            result = parse_text_consultation(
                store.read_bytes(source.source_key),
                row["extension"],
                max_segments=bucket.max_chat_segments,
                max_chars=bucket.max_chat_chars,
            )
        else:
            with tempfile.TemporaryDirectory(prefix="cscoach-stt-") as tmp:
                wav = Path(tmp) / AUDIO_ARTIFACT
                store.download_to(artifacts.key(AUDIO_ARTIFACT), wav)
                audio = read_wav(wav)
            engine = speech_to_text.load()
            result = transcribe_recording(
                engine,
                audio,
                agent_channel=speech_to_text.agent_channel,
                language=speech_to_text.language or None,
            )
        elapsed = time.perf_counter() - started
        artifacts.write_json(RAW_TRANSCRIPT_ARTIFACT, result.model_dump(mode="json"))
    metadata: dict[str, object] = {
        "source": result.source,
        "segments": len(result.segments),
        "language": result.language or "unknown",
        "elapsed_s": round(elapsed, 3),
    }
    if result.source == "stt":
        metadata |= {
            "engine": result.engine or "",
            "model": Path(result.model or "").name or (result.model or ""),
            "audio_seconds_per_wall_second": round(
                (result.duration_s or 0) / max(elapsed, 1e-6), 2
            ),
        }
    return MaterializeResult(metadata=metadata)


@asset(
    **_common,
    deps=[raw_transcript],
    kinds={"sql"},
    code_version="1",
    description="PII-redacted transcript segments: the only transcript anything downstream reads.",
)
def transcript(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    recovery: RecoveryResource,
) -> MaterializeResult:
    started = time.perf_counter()
    with consultation_step(context, warehouse, "transcript") as source:
        artifacts = bucket.artifacts(source.consultation_id)
        raw = Transcript.model_validate(artifacts.read_json(RAW_TRANSCRIPT_ARTIFACT))
        redactions: dict[str, int] = {}
        segments = []
        # Across segment and line boundaries too: a dictated number is often cut in pieces.
        redacted_segments = redact_segments(
            [s.text for s in raw.segments],
            starts=[s.start_s for s in raw.segments],
            ends=[s.end_s for s in raw.segments],
            speakers=[s.speaker.value for s in raw.segments],
        )
        for segment, redacted in zip(raw.segments, redacted_segments, strict=True):
            for kind, count in redacted.counts.items():
                redactions[kind] = redactions.get(kind, 0) + count
            segments.append(segment.model_copy(update={"text": redacted.text}))
        clean = raw.model_copy(update={"segments": segments})
        artifacts.write_json(TRANSCRIPT_ARTIFACT, clean.model_dump(mode="json"))
        warehouse.replace_rows(
            tables.transcript_segments,
            {"consultation_id": source.consultation_id},
            [
                {
                    "consultation_id": source.consultation_id,
                    "segment_index": index,
                    "start_s": s.start_s,
                    "end_s": s.end_s,
                    "speaker": s.speaker.value,
                    "channel": s.channel,
                    "text": s.text,
                    "confidence": s.confidence,
                }
                for index, s in enumerate(clean.segments)
            ],
        )
        consultation_update = {
            "language": clean.language,
            "stt_engine": clean.engine,
            "stt_model": clean.model,
            "updated_at": utcnow(),
        }
        if clean.duration_s is not None:
            consultation_update["duration_s"] = clean.duration_s
        warehouse.upsert(
            tables.consultations, {"consultation_id": source.consultation_id}, consultation_update
        )
        if not clean.segments:
            record_status(
                context, warehouse, source, "no_speech", "transcript",
                error="no speech detected: the recording holds only silence or noise",
            )  # fmt: skip
    preview = "\n".join(f"- **{s.speaker.value}**: {s.text}" for s in clean.segments[:8])
    return MaterializeResult(
        metadata={
            "segments": len(clean.segments),
            "language": clean.language or "unknown",
            "duration_s": clean.duration_s if clean.duration_s is not None else 0.0,
            "redactions": MetadataValue.json(redactions),
            "elapsed_s": round(time.perf_counter() - started, 3),
            "preview": MetadataValue.md(preview or "_no speech_"),
        }
    )


BACKFILL_PARTITIONS_PER_RUN = 100


# Both follow the active prompt version, so switching it marks every partition out of date;
# both are skippable: a consultation without speech materializes neither.
_scored_spec = {
    "group_name": CONSULTATION_GROUP,
    "code_version": f"prompt-{load_settings().prompt_version}",
    "skippable": True,
}


@multi_asset(
    name="analyse_and_score",
    specs=[
        AssetSpec(
            "consultation_analysis",
            deps=[transcript],
            kinds={"gemini"},
            description="Validated coaching analysis (Gemini, or offline local rules), one "
            "row per prompt version.",
            **_scored_spec,
        ),
        AssetSpec(
            "quality_metrics",
            deps=["consultation_analysis"],
            kinds={"sql"},
            description="Overall score from the rubric plus talk-time, pace, silence, "
            "interruption and latency metrics from the timed transcript.",
            **_scored_spec,
        ),
    ],
    partitions_def=consultation_partitions,
    # A backfill of thousands of consultations runs 100 per run (one process start-up per
    # 100, not per consultation), analysed concurrently inside within the rate limit.
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=BACKFILL_PARTITIONS_PER_RUN),
    # Dagster concurrency pool: cap analysis steps across runs (`dagster instance concurrency
    # set gemini N`), on top of the client-side rate limiter inside each process.
    pool="gemini",
)
def analyse_and_score(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    analyzer: AnalyzerResource,
    recovery: RecoveryResource,
) -> Iterator[AssetMaterialization]:
    """One step for analysis and scoring, so a multi-partition run can record each
    consultation as it finishes; no speech means neither asset materializes for it."""

    def one(key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        analysis = _analyse(context, key, bucket, warehouse, analyzer)
        if analysis is None:
            return None
        variant = analysis["prompt_variant"] or None  # the arm _analyse used
        return analysis, _score(context, key, bucket, warehouse, analyzer, variant)

    keys = context.partition_keys
    if len(keys) == 1:  # the sensor's per-consultation runs: failures fail the run as is
        yield from _materializations(keys[0], one(keys[0]))
        return
    failures: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, analyzer.max_concurrent)) as workers:
        futures = {workers.submit(one, key): key for key in keys}
        for future in as_completed(futures):
            key = futures[future]
            try:
                yield from _materializations(key, future.result())
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


def _materializations(
    key: str, result: tuple[dict[str, Any], dict[str, Any]] | None
) -> Iterator[AssetMaterialization]:
    if result is None:
        return
    analysis, score = result
    yield AssetMaterialization("consultation_analysis", partition=key, metadata=analysis)
    yield AssetMaterialization("quality_metrics", partition=key, metadata=score)


def _analyse(
    context: AssetExecutionContext,
    key: str,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    analyzer: AnalyzerResource,
) -> dict[str, Any] | None:
    """Analyse one consultation; the materialization metadata, or None when there is nothing
    to analyse (no speech, or never transcribed)."""
    with consultation_step(context, warehouse, "consultation_analysis", key) as source:
        artifacts = bucket.artifacts(source.consultation_id)
        stored = artifacts.store.read_optional(artifacts.key(TRANSCRIPT_ARTIFACT))
        if stored is None:
            # A reanalysis over "all partitions" includes consultations that failed before
            # transcription: skip them and keep the reason they failed with.
            context.log.info(f"{key}: never transcribed, nothing to analyse")
            return None
        clean = Transcript.model_validate_json(stored)
        if not clean.segments:
            context.log.info(f"{key}: no speech, nothing to analyse or score")
            return None
        prompt = load_prompt(_prompt_version(context, analyzer)).for_consultation(key)
        cache_key = analysis_cache_key(clean, prompt, analyzer.model_name)
        outcome, cache_hit = _cached_outcome(warehouse, cache_key), True
        if outcome is None:
            cache_hit = False
            try:
                outcome = analyzer.analyze(clean, prompt)
            except AnalysisError as exc:
                if exc.raw_text is None:
                    raise
                # Keep the unusable answer for whoever tunes the prompt.
                name = f"analysis.{prompt.version}.raw.txt"
                artifacts.write_text(name, exc.raw_text, "text/plain")
                raise AnalysisError(
                    f"{exc}; the model's answer is kept at {artifacts.locate(name)}"
                ) from None
            if outcome.fallback_reason is None:
                _store_in_cache(warehouse, cache_key, prompt.version, outcome)
        cost = 0.0 if cache_hit else analyzer.cost(outcome)
        analysis = outcome.analysis
        artifacts.write_json(f"analysis.{prompt.version}.json", analysis.model_dump(mode="json"))
        warehouse.replace_rows(
            tables.analyses,
            {"consultation_id": source.consultation_id, "prompt_version": prompt.version},
            [
                {
                    "consultation_id": source.consultation_id,
                    "prompt_version": prompt.version,
                    "prompt_variant": prompt.variant,
                    "analyzer": outcome.analyzer,
                    "model": outcome.model,
                    "summary": analysis.summary,
                    "customer_intent": analysis.customer_intent,
                    "issue": analysis.issue,
                    "resolution_status": analysis.resolution_status.value,
                    "sentiment_start": analysis.customer_sentiment.start.value,
                    "sentiment_end": analysis.customer_sentiment.end.value,
                    "result_json": analysis.model_dump(mode="json"),
                    "elapsed_s": round(outcome.elapsed_s, 3),
                    "input_tokens": 0 if cache_hit else outcome.input_tokens,
                    "output_tokens": 0 if cache_hit else outcome.output_tokens,
                    "cached_tokens": 0 if cache_hit else outcome.cached_tokens,
                    "cost_usd": cost,
                    "requests": 0 if cache_hit else outcome.requests,
                    "cache_hit": cache_hit,
                    "repaired": outcome.repaired,
                    "fallback_reason": outcome.fallback_reason,
                    "created_at": utcnow(),
                }
            ],
        )
        run_total = _add_to_run_cost(context, cost)
    return {
        "analyzer": outcome.analyzer,
        "model": outcome.model,
        "prompt_version": prompt.version,
        "prompt_variant": prompt.variant or "",
        "resolution_status": analysis.resolution_status.value,
        "overall_score": overall_score(analysis.rubric),
        "summary": MetadataValue.md(analysis.summary),
        "rubric": MetadataValue.json(
            {name: getattr(analysis.rubric, name).score for name in RUBRIC_CRITERIA}
        ),
        "input_tokens": 0 if cache_hit else (outcome.input_tokens or 0),
        "output_tokens": 0 if cache_hit else (outcome.output_tokens or 0),
        "cached_tokens": 0 if cache_hit else (outcome.cached_tokens or 0),
        "requests": 0 if cache_hit else outcome.requests,
        "cost_usd": cost if cost is not None else "unknown (no price for this model)",
        "run_cost_usd": run_total,
        "cache_hit": cache_hit,
        "repaired": outcome.repaired,
        "fallback": outcome.fallback_reason or "",
        "elapsed_s": round(outcome.elapsed_s, 3),
    }


RUN_COST_TAG = "cscoach/cost_usd"


def _prompt_version(context: AssetExecutionContext, analyzer: AnalyzerResource) -> str:
    """The run's `cscoach/prompt_version` tag (a reanalysis), else the configured version;
    an unknown version fails with the list of available ones."""
    version = context.run.tags.get(PROMPT_VERSION_TAG) or analyzer.prompt_version
    try:
        load_prompt(version)
    except ValueError as exc:
        raise ConsultationInputError(str(exc)) from None
    return version


_run_cost_lock = threading.Lock()


def _add_to_run_cost(context: AssetExecutionContext, cost: float | None) -> float:
    """Keep the run's running LLM cost in a run tag, visible on the run page (a backfill
    run adds up its consultations from several threads)."""
    with _run_cost_lock:
        run = context.instance.get_run_by_id(context.run_id)
        total = float((run.tags if run else {}).get(RUN_COST_TAG, 0.0)) + (cost or 0.0)
        context.instance.add_run_tags(context.run_id, {RUN_COST_TAG: f"{total:.6f}"})
    return round(total, 6)


def _cached_outcome(warehouse: WarehouseResource, cache_key: str) -> AnalysisOutcome | None:
    rows = warehouse.fetch_rows(tables.analysis_cache, cache_key=cache_key)
    if not rows:
        return None
    row = rows[0]
    return AnalysisOutcome(
        analysis=ConsultationAnalysis.model_validate(row["result_json"]),
        analyzer=row["analyzer"],
        model=row["model"],
        elapsed_s=0.0,
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cached_tokens=row["cached_tokens"],
    )


def _store_in_cache(
    warehouse: WarehouseResource, cache_key: str, prompt_version: str, outcome: AnalysisOutcome
) -> None:
    warehouse.upsert(
        tables.analysis_cache,
        {"cache_key": cache_key},
        {
            "prompt_version": prompt_version,
            "model": outcome.model,
            "schema_version": ANALYSIS_SCHEMA_VERSION,
            "analyzer": outcome.analyzer,
            "result_json": outcome.analysis.model_dump(mode="json"),
            "input_tokens": outcome.input_tokens,
            "output_tokens": outcome.output_tokens,
            "cached_tokens": outcome.cached_tokens,
            "created_at": utcnow(),
        },
    )


def _score(
    context: AssetExecutionContext,
    key: str,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    analyzer: AnalyzerResource,
    prompt_variant: str | None,
) -> dict[str, Any]:
    """Score one analysed consultation and write its coaching report."""
    started = time.perf_counter()
    with consultation_step(context, warehouse, "quality_metrics", key) as source:
        artifacts = bucket.artifacts(source.consultation_id)
        clean = Transcript.model_validate(artifacts.read_json(TRANSCRIPT_ARTIFACT))
        prompt_version = _prompt_version(context, analyzer)
        analysis = ConsultationAnalysis.model_validate(
            artifacts.read_json(f"analysis.{prompt_version}.json")
        )
        metrics = compute_call_metrics(clean)
        score = overall_score(analysis.rubric)
        warehouse.replace_rows(
            tables.quality_metrics,
            {"consultation_id": source.consultation_id, "prompt_version": prompt_version},
            [
                {
                    "consultation_id": source.consultation_id,
                    "prompt_version": prompt_version,
                    "prompt_variant": prompt_variant,
                    "overall_score": score,
                    **{
                        f"{name}_score": getattr(analysis.rubric, name).score
                        for name in RUBRIC_CRITERIA
                    },
                    **metrics.model_dump(),
                    "created_at": utcnow(),
                }
            ],
        )
        report_key = artifacts.write_text(
            REPORT_ARTIFACT, _coaching_report(source.shown_key, score, analysis)
        )
        report_location = bucket.store().locate(report_key)
        warehouse.upsert(
            tables.consultations,
            {"consultation_id": source.consultation_id},
            {"report_location": report_location, "updated_at": utcnow()},
        )
        record_status(context, warehouse, source, "succeeded", "quality_metrics")
    shown = {k: v for k, v in metrics.model_dump().items() if v is not None}
    return {
        "overall_score": score,
        "prompt_version": prompt_version,
        "summary": MetadataValue.md(analysis.summary),
        "report": MetadataValue.path(report_location),
        "elapsed_s": round(time.perf_counter() - started, 3),
        **{k: round(v, 3) if isinstance(v, float) else v for k, v in shown.items()},
    }


def gather_context(
    store: ObjectStore, obj: StoredObject, key_pattern: str
) -> tuple[ConsultationContext, dict[str, str], list[str]]:
    """Agent/team/customer fields from the sidecar, the object's metadata and the key."""
    warnings: list[str] = []
    sidecar: dict[str, Any] = {}
    for sidecar_key in sidecar_keys(obj.key):
        data = store.read_optional(sidecar_key)
        if data is None:
            continue
        try:
            sidecar = parse_sidecar(data)
        except ValueError as exc:
            warnings.append(f"ignored sidecar {display_key(sidecar_key)}: {exc}")
        break
    context_info, sources, merge_warnings = merge_context(
        sidecar=sidecar,
        object_metadata=obj.metadata,
        from_key=fields_from_key(obj.key, key_pattern),
    )
    return context_info, sources, warnings + merge_warnings


def _coaching_report(source_key: str, score: float, analysis: ConsultationAnalysis) -> str:
    lines = [
        f"# Coaching report: {source_key}",
        "",
        f"**Overall score:** {score} / 100  ",
        f"**Resolution:** {analysis.resolution_status.value}  ",
        f"**Customer sentiment:** {analysis.customer_sentiment.start.value} -> "
        f"{analysis.customer_sentiment.end.value}",
        "",
        "## Summary",
        analysis.summary,
        "",
        "## Rubric",
        "| criterion | score | reason |",
        "|---|---|---|",
        *(
            f"| {name} | {getattr(analysis.rubric, name).score}/5 | "
            f"{getattr(analysis.rubric, name).reason} |"
            for name in RUBRIC_CRITERIA
        ),
        "",
        "## Strengths",
        *(f"- {s}" for s in analysis.agent_strengths),
        "",
        "## To improve",
        *(
            f"- {p.point}" + (f' — "{p.evidence_quote}"' if p.evidence_quote else "")
            for p in analysis.improvement_points
        ),
        "",
        "## Coaching tips",
        *(f"- {t}" for t in analysis.coaching_tips),
    ]
    return "\n".join(lines) + "\n"


consultation_assets = [
    consultation_upload,
    consultation_audio,
    raw_transcript,
    transcript,
    analyse_and_score,
]
