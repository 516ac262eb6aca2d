"""What every consultation asset shares: one dynamic partition per consultation (the bucket
sensor adds them) and the asset group the per-consultation job selects."""

from dagster import DynamicPartitionsDefinition

consultation_partitions = DynamicPartitionsDefinition(name="consultations")

CONSULTATION_GROUP = "consultation"

# Celery queues steps are routed to by what they need (ignored by the in-process executor):
# `make worker QUEUES=stt` on a box that transcribes, QUEUES=analysis for one that calls the
# LLM; light steps go to Dagster's default queue.
QUEUE_TAG = "dagster-celery/queue"
STT_QUEUE = {QUEUE_TAG: "stt"}
ANALYSIS_QUEUE = {QUEUE_TAG: "analysis"}
