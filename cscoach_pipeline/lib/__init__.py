"""Pure domain logic (no Dagster imports): parsing, media, PII, metrics, analysis rules."""
