"""Records a failed run's reason on its consultation when the failure bypassed the assets'
own error handling (process killed, out of memory, run cancelled)."""

from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from ..jobs import process_consultation_job
from ..lib import tables
from ..resources.warehouse import WarehouseResource


@run_failure_sensor(
    monitored_jobs=[process_consultation_job],
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks consultations of failed runs as failed with the run's error.",
)
def record_failed_consultation_run(
    context: RunFailureSensorContext, warehouse: WarehouseResource
) -> None:
    consultation_id = context.dagster_run.tags.get("dagster/partition")
    if not consultation_id:
        return
    rows = warehouse.fetch_rows(tables.consultation_status, consultation_id=consultation_id)
    if rows and rows[0]["status"] in ("failed", "succeeded", "no_speech", "rejected"):
        return  # an asset already recorded the precise outcome
    source_key = (
        rows[0]["source_key"] if rows else context.dagster_run.tags.get("cscoach/source_key", "")
    )
    message = context.failure_event.message or "run failed"
    warehouse.set_status(
        consultation_id,
        source_key,
        "failed",
        stage="run",
        error=f"run failed: {message}",
        run_id=context.dagster_run.run_id,
    )
