"""What every consultation asset shares: one dynamic partition per consultation (the bucket
sensor adds them) and the asset group the per-consultation job selects."""

from dagster import DynamicPartitionsDefinition

consultation_partitions = DynamicPartitionsDefinition(name="consultations")

CONSULTATION_GROUP = "consultation"

# Spread into every per-consultation @asset.
CONSULTATION_ASSET = {"partitions_def": consultation_partitions, "group_name": CONSULTATION_GROUP}
