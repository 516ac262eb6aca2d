from .bucket_sensor import consultation_bucket_sensor
from .recovery import recover_stranded_consultations
from .run_status import record_cancelled_consultation_run, record_failed_consultation_run

__all__ = [
    "consultation_bucket_sensor",
    "record_cancelled_consultation_run",
    "record_failed_consultation_run",
    "recover_stranded_consultations",
]
