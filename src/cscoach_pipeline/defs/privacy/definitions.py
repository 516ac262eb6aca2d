"""Privacy: the PII-redacted transcript, the only one anything downstream reads."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cscoach_pipeline.defs.privacy.assets import transcript
from cscoach_pipeline.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[transcript])


def resources(settings: Settings) -> dict[str, Any]:
    return {}
