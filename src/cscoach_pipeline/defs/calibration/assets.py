"""The calibration stage's assets: reviewers' answers loaded from the bucket, and how the
analyzers' scorecard answers agree with them."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from cscoach_pipeline.defs.calibration.agreement import (
    ANALYZER_VS_REVIEWER,
    OVERALL,
    calibrate,
    calibration_summary,
)
from cscoach_pipeline.defs.calibration.loading import load_review_files
from cscoach_pipeline.defs.calibration.resources import QaReviewsResource
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource

CALIBRATION_GROUP = "calibration"


@asset(
    group_name=CALIBRATION_GROUP,
    kinds={"csv", "sql"},
    description="QA reviewers' answers from review files under reviews/ in the bucket (CSV "
    "or JSON lines), in qa_reviews; bad rows with their reason in review_errors.",
)
def qa_reviews(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    reviews: QaReviewsResource,
) -> MaterializeResult:
    load = load_review_files(
        bucket.store(),
        reviews.prefix,
        warehouse.reviews,
        warehouse.consultations,
        default_scorecard=reviews.default_scorecard,
        incoming_prefix=bucket.incoming_prefix,
    )
    for loaded in load.files:
        message = f"{loaded.key}: {loaded.rows} answer(s) loaded, {loaded.errors} row(s) refused"
        (context.log.warning if loaded.errors else context.log.info)(message)
    files = "\n".join(f"| {f.key} | {f.rows} | {f.errors} | {f.replaced} |" for f in load.files)
    return MaterializeResult(
        metadata={
            "files_loaded": len(load.files),
            "files_unchanged": load.unchanged,
            "answers_loaded": load.rows,
            "rows_refused": load.errors,
            "files": MetadataValue.md(
                "| file | answers | refused (see review_errors) | replaced from other files |\n"
                f"|---|---|---|---|\n{files}"
                if files
                else "No new or changed review file."
            ),
        }
    )


@asset(
    group_name=CALIBRATION_GROUP,
    deps=[qa_reviews],
    kinds={"scikitlearn", "sql"},
    description="How the analyzers' scorecard answers agree with human reviewers (and "
    "reviewers with each other), per scorecard version, prompt version, analyzer and "
    "question: exact agreement, mean absolute error, quadratic-weighted kappa. Recomputed "
    "when reviews load and when reviewed consultations get new answers.",
)
def scorecard_calibration(warehouse: WarehouseResource) -> MaterializeResult:
    store = warehouse.reviews
    reviews = store.reviews()
    rows = calibrate(reviews, store.reviewed_answers())
    store.save_calibration([row.row() for row in rows])
    overall = [r for r in rows if r.question_id == OVERALL]
    kappas = {
        f"kappa {r.scorecard_version} {r.prompt_version} {r.analyzer}": (
            MetadataValue.float(r.result.weighted_kappa)
            if r.result.weighted_kappa is not None
            else "undefined"
        )
        for r in overall
        if r.comparison == ANALYZER_VS_REVIEWER
    }
    return MaterializeResult(
        metadata={
            "reviewed_consultations": len({r["consultation_id"] for r in reviews}),
            "reviewers": len({r["reviewer"] for r in reviews}),
            "rows": len(rows),
            "overall": MetadataValue.md(calibration_summary(overall)),
            **kappas,
        }
    )
