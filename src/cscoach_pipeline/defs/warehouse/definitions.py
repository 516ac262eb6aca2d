"""Warehouse: the SQL tables BI tools read, and the internal inventory and caches."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions()


def resources(settings: Settings) -> dict[str, Any]:
    return {"warehouse": WarehouseResource(url=settings.warehouse_url)}
