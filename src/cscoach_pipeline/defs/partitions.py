"""One dynamic partition per consultation; the bucket sensor adds them."""

from dagster import DynamicPartitionsDefinition

consultation_partitions = DynamicPartitionsDefinition(name="consultations")
