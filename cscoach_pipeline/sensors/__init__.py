from .bucket_sensor import consultation_bucket_sensor
from .run_status import record_failed_consultation_run

__all__ = ["consultation_bucket_sensor", "record_failed_consultation_run"]
