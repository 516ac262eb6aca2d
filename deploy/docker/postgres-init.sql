-- Runs once, when the postgres service starts on an empty data volume: the server's first
-- database (POSTGRES_DB=dagster) holds Dagster's runs, events and schedules; this one holds
-- the warehouse tables (CSCOACH_WAREHOUSE_URL), created and upgraded by the pipeline itself.
CREATE DATABASE warehouse;
