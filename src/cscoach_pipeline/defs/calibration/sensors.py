"""The review-files sensor: loads new or changed files under reviews/ and keeps the
calibration current when reviewed consultations get new scorecard answers."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)

from cscoach_pipeline.defs.calibration.assets import CALIBRATION_GROUP, scorecard_calibration
from cscoach_pipeline.defs.calibration.loading import changed_review_files
from cscoach_pipeline.defs.calibration.resources import QaReviewsResource
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.retention.policy import UNFINISHED_RUNS
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource

load_qa_reviews_job = define_asset_job(
    name="load_qa_reviews",
    selection=AssetSelection.groups(CALIBRATION_GROUP),
    description="Load new or changed review files and compute the scorecard calibration.",
)


# answers_watermark() while no reviewed consultation has answers.
NO_ANSWERS = "None|0"


def _load_in_flight(context: SensorEvaluationContext) -> bool:
    runs = context.instance.get_run_records(
        RunsFilter(job_name=load_qa_reviews_job.name, statuses=UNFINISHED_RUNS), limit=1
    )
    return bool(runs)


def build_review_sensor(interval_s: int = 30) -> SensorDefinition:
    @sensor(
        name="qa_review_files",
        job=load_qa_reviews_job,
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Loads review files dropped under reviews/ (qa_reviews) and recomputes "
        "scorecard_calibration when reviews or reviewed consultations' answers change.",
    )
    def qa_review_files(
        context: SensorEvaluationContext,
        bucket: BucketResource,
        warehouse: WarehouseResource,
        reviews: QaReviewsResource,
    ) -> SensorResult | SkipReason:
        # One load at a time. No run key: a load that failed (an outage) is simply asked
        # for again on the next look, while a bad file is recorded by the load, not retried.
        if _load_in_flight(context):
            return SkipReason("a load_qa_reviews run is still in flight")
        changed, _ = changed_review_files(bucket.store(), reviews.prefix, warehouse.reviews)
        watermark = warehouse.reviews.answers_watermark()
        if changed:
            context.log.info(f"{len(changed)} new or changed review file(s)")
            return SensorResult(run_requests=[RunRequest()], cursor=watermark)
        if watermark != context.cursor and watermark != NO_ANSWERS:
            return SensorResult(
                run_requests=[RunRequest(asset_selection=[scorecard_calibration.key])],
                cursor=watermark,
            )
        return SkipReason("no new review file, no new answer for a reviewed consultation")

    return qa_review_files
