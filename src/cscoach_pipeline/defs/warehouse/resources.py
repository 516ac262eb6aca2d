"""The warehouse resource: BI tables in SQLite by default, PostgreSQL when the URL says so.
Code writes through its stores (stores.py); the row primitives serve the stores and tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import Engine, Table

from cscoach_pipeline.defs.warehouse.engine import warehouse_engine
from cscoach_pipeline.defs.warehouse.stores import (
    AggregateStore,
    AlertStore,
    AnalysisCacheStore,
    ConsultationStore,
    HealthStore,
    InventoryStore,
    ResultStore,
    RetentionStore,
    ReviewStore,
    StatusStore,
    TableAccess,
)

if TYPE_CHECKING:  # pandas costs ~0.3 s to import: only where a frame is read
    import pandas as pd


class WarehouseResource(ConfigurableResource):
    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///data/warehouse.db")

    @property
    def engine(self) -> Engine:
        return warehouse_engine(self.url)

    @property
    def rows(self) -> TableAccess:
        return TableAccess(self.engine)

    @property
    def inventory(self) -> InventoryStore:
        return InventoryStore(self.engine)

    @property
    def statuses(self) -> StatusStore:
        return StatusStore(self.engine)

    @property
    def consultations(self) -> ConsultationStore:
        return ConsultationStore(self.engine)

    @property
    def results(self) -> ResultStore:
        return ResultStore(self.engine)

    @property
    def retention(self) -> RetentionStore:
        return RetentionStore(self.engine)

    @property
    def reviews(self) -> ReviewStore:
        return ReviewStore(self.engine)

    @property
    def aggregates(self) -> AggregateStore:
        return AggregateStore(self.engine)

    @property
    def health(self) -> HealthStore:
        return HealthStore(self.engine)

    @property
    def alerts(self) -> AlertStore:
        return AlertStore(self.engine)

    @property
    def analysis_cache(self) -> AnalysisCacheStore:
        return AnalysisCacheStore(self.engine)

    # Reading is safe anywhere (tests, notebooks, the query CLI).
    def fetch_rows(self, table: Table, **match: Any) -> list[dict[str, Any]]:
        return self.rows.fetch_rows(table, **match)

    def read_frame(self, sql: str) -> pd.DataFrame:
        return self.rows.read_frame(sql)
