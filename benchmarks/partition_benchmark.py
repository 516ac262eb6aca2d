"""Benchmark (not a test): the Dagster UI and the bucket sensor with 10k, 100k and 1M partitions
of the `consultations` dynamic partitions definition (issue 9, point 5). Dagster recommends at
most about 100,000 partitions per asset; these figures size the retention that removes old
partitions from the instance (defs/retention).

For each size N, in a Dagster instance on PostgreSQL (deploy/dagster.postgres.yaml, a fresh
database from tests/support/postgres.py) with the warehouse on PostgreSQL too:

Seeding (before any Dagster process starts): N partition keys shaped like real ones
(`team-03__day-001__call-00123.wav-bda5f0ec`, what consultation_id_for gives for
`incoming/team-03/day-001/call-00123.wav`), COPYed into the instance's `dynamic_partitions`
table with create timestamps spread at 50,000 a day (oldest first), plus 1,000 more keys among
them that part 1 deletes again. Optionally (`--materialized-fraction`, default 0.5) runless
materialization events of `consultation_upload` for that fraction of the keys (a random
sample, or with `--materialized-pattern oldest` the oldest keys: one contiguous range, as when
consultations are processed in arrival order), COPYed into `event_logs` from one event the
instance wrote itself (report_runless_asset_event), so its partition status has something to
show; the other assets have no materializations. Then ANALYZE.

1. Instance (no Dagster process running yet): `get_dynamic_partitions` (all keys),
   `has_dynamic_partition` (200 random keys), adding one key as the sensor daemon does
   (has_dynamic_partition + add_dynamic_partitions, 20 keys), and deleting 1,000 keys one by
   one as the daemon does for a DeleteDynamicPartitionsRequest (has_dynamic_partition +
   delete_dynamic_partition per key): how many partitions a retention tick retires a minute.

2. The UI: code server + dagster-daemon + dagster-webserver start (tests/support/daemon.py),
   then the GraphQL operations the UI's pages send, taken at run time from the installed
   dagster-webserver's own UI sources (the `gql` templates in its webapp source maps, fragments
   resolved), so they are exactly what this version's UI sends:
     asset catalog / graph: LocationWorkspaceAssetsQuery, AssetRecordsQuery (limit 1000),
       AssetCatalogTableQuery, AssetGraphLiveQuery and AssetHealthQuery for every asset;
     asset page, Partitions tab of consultation_upload: AssetViewDefinitionQuery,
       PartitionHealthQuery, AssetPartitionDetailQuery (the newest partition);
     job page, Partitions tab of process_consultation (an asset job, AssetJobPartitionsView):
       AssetJobPartitionSetsQuery, PartitionHealthQuery for each partitioned asset of the job
       one after the other (the UI loads them one at a time), JobBackfillsQuery (limit 10).
   Each is sent once cold (first time after start: the status cache of the asset is built)
   and then `--repeats` times; reported: cold and median wall time (request to the last byte
   of the response) and the response size. Plus the webserver's peak RSS (VmHWM).

3. The bucket sensor (CSCOACH_SETTLE_SECONDS=0, CSCOACH_SENSOR_INTERVAL_S=2): `--drops` chats
   (a few lines of text each) dropped one after another into the bucket; for each, from
   Dagster's tick and run records: the duration of the tick that requested its run (sensor
   evaluation in the code server + the daemon adding the partition + submitting the run),
   drop -> run created, drop -> run started, drop -> `succeeded` in consultation_status.
   Also the median duration of the sensor's idle (skipped) ticks, and the daemon's peak RSS.

4. The browser (`--browser`, for the sizes in `--browser-sizes`, default all): after the
   GraphQL part (or, when it is skipped, after one untimed PartitionHealthQuery per
   partitioned asset of the job, so the server's status cache is warm either way), headless
   Chromium (Debian package `chromium`, /usr/bin/chromium, driven over the DevTools protocol
   by benchmarks/browser_timing.py) opens each page in a fresh browser context and times it
   with the page's clock from navigation start:
     asset page  /assets/consultation_upload?view=partitions  -- rendered when the
       "N Partitions Selected" line and at least one partition key of the list are in the DOM;
     job page    /locations/cscoach_pipeline/jobs/process_consultation/partitions  -- rendered
       when the partition status bar (its colour spans) and a non-zero "Total partitions"
       count are in the DOM and every partitioned asset's PartitionHealthQuery has answered
       (the UI asks for them one after another and re-renders after each);
   then idle: no data request in flight and no long task for 3 s (waited for up to
   `--browser-idle-timeout` s after rendered). Reported: rendered and idle times, long-task
   total / count / longest from navigation to idle (PerformanceObserver 'longtask'), the part
   of the long-task time after the last PartitionHealthQuery response; then the page is
   watched until `--browser-observe` (20) s after rendered, and the long tasks and
   PartitionHealthQuery refetches after the idle moment are reported apart (the UI polls and
   refetches); Chromium's script time and JS heap at the end, and a screenshot
   bench-results/browser/<page>-<N>[-oldest].png (taken at the end) to check by eye. The "Join the
   Dagster community" dialog is dismissed first (setNuxSeen, what its Skip button sends).
   A page not rendered within `--browser-timeout` (600 s) is reported as "> 600 s".

The machine this was written on has 2 cores and other engineers run tests on it at the same
time (the load average is recorded): the figures are indicative, not precise.

Needs PostgreSQL on 127.0.0.1:5432 (tests/support/postgres.py). The temporary databases are
dropped and every process started is stopped at the end of each size.

Usage: `python -m benchmarks.partition_benchmark [--sizes 10000 100000 1000000] [--repeats 3]
[--drops 3] [--materialized-fraction 0.5] [--materialized-pattern random] [--timeout 900]
[--skip graphql sensor] [--browser [--browser-sizes 10000 100000] [--browser-timeout 600]]
[--results-name partitions]`.
Results print as tables and are saved to bench-results/<results-name>.json (partitions.json).
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import io
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import yaml
from sqlalchemy.engine import make_url

from benchmarks.results import RESULTS_DIR, save_results
from cscoach_pipeline.defs.ingest.partition_keys import consultation_id_for
from cscoach_pipeline.defs.partitions import consultation_partitions
from tests.support.daemon import FINAL_STATUSES, LOCATION_NAME, DagsterDeployment
from tests.support.postgres import temporary_database

REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_STORAGE = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.postgres.yaml").read_text())
PARTITIONS = consultation_partitions.name
ASSET = "consultation_upload"  # the asset page measured, and the one with materializations
JOB = "process_consultation"
REPOSITORY = "__repository__"  # the repository name of a Definitions object
SENSOR = "consultation_bucket_sensor"
PER_DAY = 50_000  # consultations a day: spreads the partitions' create timestamps
DELETED = 1_000  # partitions deleted one by one in part 1
ENV = {"CSCOACH_SETTLE_SECONDS": "0", "CSCOACH_SENSOR_INTERVAL_S": "2"}

UI_OPERATIONS = (
    "LocationWorkspaceAssetsQuery",
    "AssetRecordsQuery",
    "AssetCatalogTableQuery",
    "AssetGraphLiveQuery",
    "AssetHealthQuery",
    "AssetViewDefinitionQuery",
    "PartitionHealthQuery",
    "AssetPartitionDetailQuery",
    "AssetJobPartitionSetsQuery",
    "JobBackfillsQuery",
)
# Setup only (not timed, not a UI query): which assets exist and which the job's are.
ASSET_NODES_SETUP = "{ assetNodes { assetKey { path } isPartitioned jobNames } }"

# When a page counts as rendered in the browser (JavaScript, run by the page every 100 ms;
# returns what it found). The production UI build has no test ids: text and the CSS-module
# class of the partition status bar (PartitionStatusBar_colorSpan__<hash>).
ASSET_PAGE_RENDERED = r"""() => {
  const line = document.evaluate("//text()[contains(., 'Partitions Selected')]", document, null,
    XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
  if (!line) return null;
  const selected = line.parentNode.textContent.trim();
  if (!/^[1-9][0-9,]* Partitions Selected$/.test(selected)) return null;
  const key = document.body.textContent.match(/team-\d\d__day-\d{3}__call-\d{5}\.wav-[0-9a-f]{8}/);
  return key ? selected + '; first key listed ' + key[0] : null;
}"""
JOB_PAGE_RENDERED = r"""() => {
  const count = (label) => {
    const node = document.evaluate("//div[text()='" + label + "']", document, null,
      XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
    return node ? node.parentNode.textContent.replace(label, '').trim() : null;
  };
  const total = count('Total partitions');
  if (!total || total === '0') return null;
  const spans = document.querySelectorAll('[class*="PartitionStatusBar_colorSpan"]').length;
  if (!spans) return null;
  const health = performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('op=PartitionHealthQuery')).length;
  if (health < %d) return null;
  return total + ' Total partitions, ' + count('Missing partitions') + ' Missing, ' + spans +
    ' status bar spans, ' + health + ' PartitionHealthQuery responses';
}"""


# ---------------------------------------------------------------------------------- UI queries


def ui_operations(names: Iterable[str]) -> dict[str, dict[str, str]]:
    """The GraphQL operations of the installed dagster-webserver's UI, by operation name:
    {"query": full text with every fragment it spreads, "ui_file": its source file}. Read from
    the `gql` templates in the UI sources that the webapp's source maps carry."""
    import dagster_webserver

    chunks = Path(dagster_webserver.__file__).parent / "webapp" / "build" / "_next" / "static"
    definition = re.compile(r"\b(query|mutation|subscription|fragment)\s+(\w+)")
    operations: dict[str, tuple[str, str]] = {}
    fragments: dict[str, str] = {}
    for source_map in glob.glob(str(chunks / "**" / "*.js.map"), recursive=True):
        raw = Path(source_map).read_text(errors="replace")
        if "gql`" not in raw:
            continue
        data = json.loads(raw)
        sources, contents = data.get("sources", []), data.get("sourcesContent") or []
        for source, content in zip(sources, contents, strict=False):
            if not content or "node_modules" in source or "gql`" not in content:
                continue
            ui_file = source.split("ui-core/", 1)[-1]
            for template in re.findall(r"gql`(.*?)`", content, re.S):
                body = re.sub(r"\$\{[^}]*\}", "", template)  # interpolated fragment constants
                position = 0
                while match := definition.search(body, position):
                    end = _matching_brace(body, body.index("{", match.end()))
                    text = body[match.start() : end + 1]
                    if match.group(1) == "fragment":
                        fragments[match.group(2)] = text
                    else:
                        operations[match.group(2)] = (text, f"ui-core/{ui_file}")
                    position = end + 1
    found: dict[str, dict[str, str]] = {}
    for name in names:
        if name not in operations:
            raise RuntimeError(f"the installed UI has no GraphQL operation {name}")
        text, ui_file = operations[name]
        spread: list[str] = []
        pending = [text]
        while pending:
            for fragment in re.findall(r"\.\.\.\s*([A-Za-z_]\w*)", pending.pop()):
                if fragment != "on" and fragment not in spread:
                    spread.append(fragment)
                    pending.append(fragments[fragment])
        found[name] = {
            "query": "\n".join([text] + [fragments[f] for f in spread]),
            "ui_file": ui_file,
        }
    return found


def _matching_brace(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError("unbalanced braces in a gql template")


# ------------------------------------------------------------------------------------ seeding


def partition_key(index: int) -> str:
    """What consultation_id_for gives for `incoming/team-TT/day-DDD/call-NNNNN.wav`, 50,000 calls
    a day (no PII, so no redaction: the same string, without running the redaction regexes a
    million times; six digits or more in a name would be redacted as a phone number)."""
    team = f"team-{index % 40:02d}"
    day = f"day-{index // PER_DAY:03d}"
    name = f"call-{index % PER_DAY:05d}.wav"
    digest = hashlib.sha1(f"incoming/{team}/{day}/{name}".encode()).hexdigest()[:8]
    return f"{team}__{day}__{name}-{digest}"


def _connect(url: str) -> Any:
    u = make_url(url)
    return psycopg2.connect(
        host=u.host, port=u.port, user=u.username, password=u.password or "", dbname=u.database
    )


def _copy(cursor: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """COPY rows (every value a string, none NULL) into table, 100k rows at a time."""
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    batch: list[Sequence[str]] = []

    def flush() -> None:
        buffer = io.StringIO()
        csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(batch)
        buffer.seek(0)
        cursor.copy_expert(statement, buffer)
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= 100_000:
            flush()
    if batch:
        flush()


def seed(
    instance: Any, url: str, size: int, materialized_fraction: float, pattern: str = "random"
) -> tuple[dict[str, Any], list[str], list[str]]:
    """N + DELETED partitions and the materializations; returns the figures, the keys that
    stay and the keys part 1 deletes."""
    from dagster import AssetMaterialization

    sample = "incoming/team-03/day-001/call-00123.wav"
    assert partition_key(PER_DAY + 123) == consultation_id_for(sample), "keys like real ones"
    total = size + DELETED
    rng = random.Random(size)
    to_delete = set(rng.sample(range(total), DELETED))
    keys = [partition_key(i) for i in range(total)]
    kept = [k for i, k in enumerate(keys) if i not in to_delete]
    deleted = [k for i, k in enumerate(keys) if i in to_delete]

    # One key and one materialization through Dagster itself: the schema, and the template row.
    started = time.perf_counter()
    instance.add_dynamic_partitions(PARTITIONS, [kept[0]])
    instance.report_runless_asset_event(AssetMaterialization(asset_key=ASSET, partition=kept[0]))
    now = datetime.now(tz=UTC).replace(tzinfo=None)  # the tables hold naive UTC
    materialized = 0
    with _connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("DELETE FROM dynamic_partitions")
        _copy(
            cursor,
            "dynamic_partitions",
            ("partitions_def_name", "partition", "create_timestamp"),
            (
                (PARTITIONS, key, (now - timedelta(days=(total - i) / PER_DAY)).isoformat())
                for i, key in enumerate(keys)
            ),
        )
        partitions_s = time.perf_counter() - started
        cursor.execute(
            "SELECT run_id, event, dagster_event_type, timestamp, asset_key FROM event_logs "
            "WHERE partition = %s",
            (kept[0],),
        )
        run_id, event, event_type, stamp, asset_key = cursor.fetchone()
        marker = f'"partition": "{kept[0]}"'
        assert event.count(marker) == 1, "the template event names its partition once"
        count = int(materialized_fraction * len(kept))
        if pattern == "oldest":  # processed in arrival order: one contiguous run of keys
            picked = list(range(1, min(count + 1, len(kept))))
        else:  # a random sample: about as many status ranges as materializations
            picked = sorted(rng.sample(range(1, len(kept)), count))
        _copy(
            cursor,
            "event_logs",
            ("run_id", "event", "dagster_event_type", "timestamp", "asset_key", "partition"),
            (
                (
                    run_id,
                    event.replace(marker, f'"partition": "{kept[i]}"'),
                    event_type,
                    stamp.isoformat(),
                    asset_key,
                    kept[i],
                )
                for i in picked
            ),
        )
        materialized = len(picked) + 1
        conn.commit()
        conn.autocommit = True
        cursor.execute("ANALYZE dynamic_partitions")
        cursor.execute("ANALYZE event_logs")
        cursor.execute("SELECT pg_total_relation_size('dynamic_partitions')")
        table_bytes = cursor.fetchone()[0]
    conn.close()
    figures = {
        "partitions_seeded": total,
        "partitions_after_deletes": size,
        f"{ASSET}_materializations": materialized,
        "seed_partitions_s": round(partitions_s, 2),
        "seed_total_s": round(time.perf_counter() - started, 2),
        "dynamic_partitions_table_mb": round(table_bytes / 1e6, 1),
    }
    return figures, kept, deleted


# ----------------------------------------------------------------------------------- instance


def _median_s(fn: Callable[[], Any], times: int) -> tuple[float, Any]:
    runs, value = [], None
    for _ in range(times):
        started = time.perf_counter()
        value = fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), value


def measure_instance(
    instance: Any, kept: list[str], deleted: list[str], repeats: int
) -> dict[str, Any]:
    listing_s, listed = _median_s(lambda: instance.get_dynamic_partitions(PARTITIONS), repeats)
    assert len(listed) == len(kept) + len(deleted), (len(listed), len(kept), len(deleted))

    rng = random.Random(0)
    has_ms = []
    for key in rng.sample(kept, min(200, len(kept))):
        started = time.perf_counter()
        assert instance.has_dynamic_partition(PARTITIONS, key)
        has_ms.append((time.perf_counter() - started) * 1000)

    fresh = [f"bench-new-{i:02d}-{rng.getrandbits(32):08x}" for i in range(20)]
    add_ms = []
    for key in fresh:  # what the sensor daemon does with an AddDynamicPartitionsRequest
        started = time.perf_counter()
        if not instance.has_dynamic_partition(PARTITIONS, key):
            instance.add_dynamic_partitions(PARTITIONS, [key])
        add_ms.append((time.perf_counter() - started) * 1000)
    for key in fresh:
        instance.delete_dynamic_partition(PARTITIONS, key)

    started = time.perf_counter()
    for key in deleted:  # ... and with a DeleteDynamicPartitionsRequest
        if instance.has_dynamic_partition(PARTITIONS, key):
            instance.delete_dynamic_partition(PARTITIONS, key)
    delete_s = time.perf_counter() - started
    remaining = len(instance.get_dynamic_partitions(PARTITIONS))
    assert remaining == len(kept), (remaining, len(kept))
    per_key_ms = delete_s / len(deleted) * 1000
    return {
        "get_dynamic_partitions_s": round(listing_s, 3),
        "has_dynamic_partition_ms": round(statistics.median(has_ms), 2),
        "add_one_partition_ms": round(statistics.median(add_ms), 2),
        "delete_1000_one_by_one_s": round(delete_s, 2),
        "delete_ms_per_partition": round(per_key_ms, 2),
        "deletes_per_minute": int(60_000 / per_key_ms),
    }


# ------------------------------------------------------------------------------------ GraphQL


class GraphQL:
    def __init__(self, port: int, timeout: float) -> None:
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.timeout = timeout

    def post(self, query: str, variables: dict[str, Any]) -> tuple[float, int, Any]:
        """(wall seconds to the last byte, response bytes, data); raises on errors."""
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            raw = response.read()
        elapsed = time.perf_counter() - started
        payload = json.loads(raw)
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {json.dumps(payload['errors'])[:500]}")
        return elapsed, len(raw), payload["data"]


def _timed_query(
    client: GraphQL, op: dict[str, str], variables: dict[str, Any], repeats: int
) -> dict[str, Any]:
    """Cold once, then `repeats` times: cold_s, median_s, bytes (or the error)."""
    figures: dict[str, Any] = {"ui_file": op["ui_file"], "variables": variables}
    runs: list[float] = []
    try:
        for _ in range(1 + repeats):
            elapsed, size, _data = client.post(op["query"], variables)
            runs.append(elapsed)
            figures["bytes"] = size
    except (OSError, RuntimeError) as exc:  # a timeout is an OSError
        figures["error"] = f"{type(exc).__name__}: {exc}"[:300]
    if runs:
        figures["cold_s"] = round(runs[0], 3)
    if len(runs) > 1:
        figures["median_s"] = round(statistics.median(runs[1:]), 3)
        figures["warm_runs_s"] = [round(r, 3) for r in runs[1:]]
    return figures


def measure_graphql(d: DagsterDeployment, timeout: float, repeats: int) -> dict[str, Any]:
    ops = ui_operations(UI_OPERATIONS)
    client = GraphQL(d.webserver_port, timeout)
    _, _, setup = client.post(ASSET_NODES_SETUP, {})
    nodes = setup["assetNodes"]
    all_keys = [{"path": n["assetKey"]["path"]} for n in nodes]
    job_assets = [
        {"path": n["assetKey"]["path"]}
        for n in nodes
        if n["isPartitioned"] and JOB in n["jobNames"]
    ]
    repository = {"repositoryName": REPOSITORY, "repositoryLocationName": LOCATION_NAME}
    asset = {"path": [ASSET]}
    newest = d.instance.get_dynamic_partitions(PARTITIONS)[-1]

    catalog = {
        "LocationWorkspaceAssetsQuery": {"name": LOCATION_NAME},
        "AssetRecordsQuery": {"limit": 1000},
        "AssetCatalogTableQuery": {"limit": 1000},
        "AssetGraphLiveQuery": {"assetKeys": all_keys},
        "AssetHealthQuery": {"assetKeys": all_keys},
    }
    asset_page = {
        "AssetViewDefinitionQuery": {"assetKey": asset},
        "PartitionHealthQuery": {"assetKey": asset},
        "AssetPartitionDetailQuery": {"assetKey": asset, "partitionKey": newest},
    }
    out: dict[str, Any] = {"assets": len(all_keys), "partitioned_assets_in_job": len(job_assets)}
    for page, queries in (("asset_catalog", catalog), (f"asset_page:{ASSET}", asset_page)):
        out[page] = {}
        for name, variables in queries.items():
            out[page][name] = figures = _timed_query(client, ops[name], variables, repeats)
            _progress(f"  {page} {name}: {_brief(figures)}")

    # The job's Partitions tab: the partition set, then each asset's health one at a time.
    job_page: dict[str, Any] = {}
    _, _, sets = client.post(
        ops["AssetJobPartitionSetsQuery"]["query"], {"pipelineName": JOB, **repository}
    )
    partition_set = sets["partitionSetsOrError"]["results"][0]["name"]
    job_page["AssetJobPartitionSetsQuery"] = _timed_query(
        client, ops["AssetJobPartitionSetsQuery"], {"pipelineName": JOB, **repository}, repeats
    )
    loads: list[float] = []
    health: dict[str, Any] = {}
    for load in range(1 + repeats):
        total, failed = 0.0, False
        for key in job_assets:
            name = "/".join(key["path"])
            try:
                elapsed, size, _ = client.post(
                    ops["PartitionHealthQuery"]["query"], {"assetKey": key}
                )
            except (OSError, RuntimeError) as exc:
                health.setdefault(name, {})["error"] = f"{type(exc).__name__}: {exc}"[:300]
                failed = True
                break
            entry = health.setdefault(name, {"runs_s": []})
            entry["runs_s"].append(round(elapsed, 3))
            entry["bytes"] = size
            total += elapsed
        if failed:
            break
        loads.append(total)
        _progress(f"  job page load {load}: {total:.2f} s for {len(job_assets)} assets")
    job_page["PartitionHealthQuery_per_asset"] = health
    job_page["status_all_assets"] = {
        "ui_file": ops["PartitionHealthQuery"]["ui_file"],
        "cold_s": round(loads[0], 3) if loads else None,
        "median_s": round(statistics.median(loads[1:]), 3) if len(loads) > 1 else None,
        "bytes": sum(h.get("bytes", 0) for h in health.values()),
    }
    job_page["JobBackfillsQuery"] = _timed_query(
        client,
        ops["JobBackfillsQuery"],
        {"partitionSetName": partition_set, "repositorySelector": repository, "limit": 10},
        repeats,
    )
    out[f"job_partitions_page:{JOB}"] = job_page
    out["webserver_peak_rss_mb"] = _peak_rss_mb(d.pid("webserver"))
    return out


# -------------------------------------------------------------------------------------- browser


def measure_browser(d: DagsterDeployment, size: int, args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.browser_timing import Chromium, time_page

    client = GraphQL(d.webserver_port, args.timeout)
    _, _, setup = client.post(ASSET_NODES_SETUP, {})
    job_assets = [
        {"path": n["assetKey"]["path"]}
        for n in setup["assetNodes"]
        if n["isPartitioned"] and JOB in n["jobNames"]
    ]
    out: dict[str, Any] = {"partitioned_assets_in_job": len(job_assets)}
    # What the "Join the Dagster community" dialog's Skip button sends (once per instance):
    # without it the dialog covers the screenshots.
    client.post("mutation SetNuxSeen { setNuxSeen }", {})
    if "graphql" in args.skip:  # warm the status cache, as the GraphQL part would have
        health = ui_operations(["PartitionHealthQuery"])["PartitionHealthQuery"]["query"]
        started = time.perf_counter()
        for key in job_assets:
            client.post(health, {"assetKey": key})
        out["status_cache_warm_up_s"] = round(time.perf_counter() - started, 2)
        _progress(f"  browser: status cache warmed in {out['status_cache_warm_up_s']} s")
    base = f"http://127.0.0.1:{d.webserver_port}"
    location = urllib.parse.quote(LOCATION_NAME, safe="")
    pages = {
        f"asset_page:{ASSET}": (
            f"{base}/assets/{ASSET}?view=partitions",
            ASSET_PAGE_RENDERED,
        ),
        f"job_partitions_page:{JOB}": (
            f"{base}/locations/{location}/jobs/{JOB}/partitions",
            JOB_PAGE_RENDERED % len(job_assets),
        ),
    }
    suffix = "" if args.materialized_pattern == "random" else f"-{args.materialized_pattern}"
    out["load_average_before"] = os.getloadavg()
    with Chromium(args.chromium) as browser:
        out["chromium"] = browser.version()
        for page, (url, condition) in pages.items():
            slug = page.split(":")[0]
            figures = time_page(
                browser,
                url,
                condition,
                timeout=args.browser_timeout,
                idle_timeout=args.browser_idle_timeout,
                observe_s=args.browser_observe,
                data_operation="PartitionHealthQuery",
                screenshot=RESULTS_DIR / "browser" / f"{slug}-{size}{suffix}.png",
            )
            figures["load_average_after"] = os.getloadavg()
            out[page] = figures
            _progress(f"  browser {slug}: {_browser_brief(figures)}")
    out["webserver_peak_rss_mb"] = _peak_rss_mb(d.pid("webserver"))
    return out


def _browser_brief(figures: dict[str, Any]) -> str:
    keys = (
        "rendered_s", "idle_s", "long_task_total_s", "long_task_max_s", "long_tasks",
        "last_PartitionHealthQuery_response_s", "rendered_after_data_s", "rendered_what",
        "after_idle_long_task_total_s", "after_idle_PartitionHealthQuery_requests",
        "chromium_metrics", "screenshot",
    )  # fmt: skip
    return json.dumps({k: figures.get(k) for k in keys})


def _brief(figures: dict[str, Any]) -> str:
    if "error" in figures:
        return figures["error"]
    return (
        f"cold {figures.get('cold_s')} s, median {figures.get('median_s')} s, "
        f"{figures.get('bytes', 0) / 1e6:.2f} MB"
    )


def _peak_rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


# ------------------------------------------------------------------------------------- sensor


def _sensor_ticks(instance: Any) -> list[Any]:
    from dagster._core.scheduler.instigation import InstigatorType

    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == SENSOR:
            return list(instance.get_ticks(state.instigator_origin_id, state.selector_id))
    return []


def measure_sensor(d: DagsterDeployment, drops: int, timeout: float) -> dict[str, Any]:
    from dagster import DagsterRunStatus, RunsFilter

    d.wait_for(lambda: len(_sensor_ticks(d.instance)) >= 3, 120, "three sensor ticks")
    started_states = {DagsterRunStatus.STARTED, DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE}
    results = []
    for index in range(drops):
        name = f"bench/chat-{index:02d}.txt"
        key = d.source_key(name)
        consultation = consultation_id_for(key)
        dropped = time.time()
        d.drop(name, f"Agent: Hello, this is call {index}.\nCustomer: Hi.\n")
        created = run_started = final = None
        run_id, status = None, None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = d.instance.get_runs(filters=RunsFilter(tags={"dagster/partition": consultation}))
            now = time.time()
            if runs:
                run = runs[0]  # newest first
                run_id = run.run_id
                created = created or now
                if run.status in started_states:
                    run_started = run_started or now
                finished = run.is_finished
            else:
                finished = False
            row = d.statuses().get(key)
            if row and row["status"] in FINAL_STATUSES:
                final = final or now
                status = row["status"]
            if final and finished:
                break
            time.sleep(0.2)
        entry: dict[str, Any] = {"source_key": key, "status": status}
        if created is None or final is None:
            entry["error"] = f"no final status within {timeout:.0f} s\n{d.describe()}"
            results.append(entry)
            continue
        tick = next((t for t in _sensor_ticks(d.instance) if run_id in t.run_ids), None)
        stats = d.instance.get_run_stats(run_id)
        entry.update(
            {
                "drop_to_run_created_s": round(created - dropped, 2),
                "drop_to_run_started_s": round(run_started - dropped, 2) if run_started else None,
                "drop_to_final_s": round(final - dropped, 2),
                "run_wall_s": round(stats.end_time - stats.start_time, 2)
                if stats.end_time and stats.start_time
                else None,
                "run_launch_s": round(stats.start_time - stats.launch_time, 2)
                if stats.start_time and stats.launch_time
                else None,
            }
        )
        if tick is not None and tick.end_timestamp:
            entry["requesting_tick_s"] = round(tick.end_timestamp - tick.timestamp, 3)
            entry["drop_to_tick_start_s"] = round(tick.timestamp - dropped, 2)
        results.append(entry)
        _progress(f"  drop {index}: {json.dumps(entry)}")

    ticks = _sensor_ticks(d.instance)
    idle = [t.end_timestamp - t.timestamp for t in ticks if t.end_timestamp and not t.run_ids]
    done = [r for r in results if "error" not in r]

    def median(field: str) -> float | None:
        values = [r[field] for r in done if r.get(field) is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "drops": results,
        "idle_ticks": len(idle),
        "idle_tick_median_s": round(statistics.median(idle), 3) if idle else None,
        "idle_tick_max_s": round(max(idle), 3) if idle else None,
        "requesting_tick_median_s": median("requesting_tick_s"),
        "drop_to_run_created_median_s": median("drop_to_run_created_s"),
        "drop_to_run_started_median_s": median("drop_to_run_started_s"),
        "drop_to_final_median_s": median("drop_to_final_s"),
        "run_launch_median_s": median("run_launch_s"),
        "run_wall_median_s": median("run_wall_s"),
        "succeeded": sum(1 for r in results if r.get("status") == "succeeded"),
        "daemon_peak_rss_mb": _peak_rss_mb(d.pid("daemon")),
        "code_server_peak_rss_mb": _peak_rss_mb(d.pid("code_server")),
    }


# -------------------------------------------------------------------------------------- runs


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(size: int, args: argparse.Namespace) -> dict[str, Any]:
    row: dict[str, Any] = {"partitions": size, "load_average_before": os.getloadavg()}
    with (
        temporary_database() as dagster_url,
        temporary_database() as warehouse_url,
        tempfile.TemporaryDirectory(prefix="cscoach-partition-bench-") as tmp,
    ):
        os.environ["DAGSTER_PG_URL"] = dagster_url  # this process's own instance, like the tests
        d = DagsterDeployment(
            Path(tmp),
            env={"DAGSTER_PG_URL": dagster_url, **ENV},
            warehouse_url=warehouse_url,
            instance_overrides=POSTGRES_STORAGE,
            startup_timeout=300,
        )
        try:
            _progress(f"N={size}: seeding")
            row["seed"], kept, deleted = seed(
                d.instance, dagster_url, size, args.materialized_fraction, args.materialized_pattern
            )
            _progress(f"  {row['seed']}")
            row["instance"] = measure_instance(d.instance, kept, deleted, args.repeats)
            _progress(f"  {row['instance']}")
            started = time.perf_counter()
            with d:  # code server, daemon and webserver start now, with the partitions there
                row["deployment_start_s"] = round(time.perf_counter() - started, 1)
                _progress(f"  started in {row['deployment_start_s']} s")
                if "graphql" not in args.skip:
                    _progress("  GraphQL")
                    row["graphql"] = measure_graphql(d, args.timeout, args.repeats)
                if args.browser and size in args.browser_sizes:
                    _progress("  browser")
                    row["browser"] = measure_browser(d, size, args)
                if "sensor" not in args.skip:
                    _progress("  sensor")
                    row["sensor"] = measure_sensor(d, args.drops, args.timeout)
        finally:
            d.close()
            os.environ.pop("DAGSTER_PG_URL", None)
    row["load_average_after"] = os.getloadavg()
    return row


def _cell(figures: dict[str, Any] | None) -> str:
    if not figures:
        return "-"
    if "error" in figures and "median_s" not in figures:
        return "ERROR/timeout"
    mb = figures.get("bytes", 0) / 1e6
    median = figures.get("median_s")
    return f"{median if median is not None else '-'} ({figures.get('cold_s')}) {mb:.2f}MB"


def print_tables(rows: list[dict[str, Any]]) -> None:
    sizes = [f"N={r['partitions']:,}" for r in rows]
    width = 30
    print("\nGraphQL: median s of the repeats (cold s) response size")
    print(f"{'page / query':<52}" + "".join(f"{s:>{width}}" for s in sizes))
    pages = [k for k, v in rows[0].get("graphql", {}).items() if isinstance(v, dict)]
    for page in pages:
        for query in rows[0]["graphql"][page]:
            if query == "PartitionHealthQuery_per_asset":
                continue
            cells = [_cell(r.get("graphql", {}).get(page, {}).get(query)) for r in rows]
            label = f"{page.split(':')[0]} {query}"
            print(f"{label:<52}" + "".join(f"{c:>{width}}" for c in cells))
    metrics = [
        ("seed: COPY partitions (s)", "seed", "seed_partitions_s"),
        ("seed: total incl. materializations (s)", "seed", "seed_total_s"),
        (f"{ASSET} materializations seeded", "seed", f"{ASSET}_materializations"),
        ("dynamic_partitions table (MB)", "seed", "dynamic_partitions_table_mb"),
        ("get_dynamic_partitions (s)", "instance", "get_dynamic_partitions_s"),
        ("has_dynamic_partition (ms)", "instance", "has_dynamic_partition_ms"),
        ("add one partition, has+add (ms)", "instance", "add_one_partition_ms"),
        ("delete 1000 one by one (s)", "instance", "delete_1000_one_by_one_s"),
        ("deletes per minute", "instance", "deletes_per_minute"),
        ("deployment start (s)", None, "deployment_start_s"),
        ("webserver peak RSS (MB)", "graphql", "webserver_peak_rss_mb"),
        ("sensor idle tick median (s)", "sensor", "idle_tick_median_s"),
        ("sensor idle tick max (s)", "sensor", "idle_tick_max_s"),
        ("sensor requesting tick median (s)", "sensor", "requesting_tick_median_s"),
        ("drop -> run created median (s)", "sensor", "drop_to_run_created_median_s"),
        ("drop -> run started median (s)", "sensor", "drop_to_run_started_median_s"),
        ("drop -> succeeded median (s)", "sensor", "drop_to_final_median_s"),
        ("run wall median (s)", "sensor", "run_wall_median_s"),
        ("consultations succeeded", "sensor", "succeeded"),
        ("daemon peak RSS (MB)", "sensor", "daemon_peak_rss_mb"),
        ("code server peak RSS (MB)", "sensor", "code_server_peak_rss_mb"),
    ]
    browser_rows = [r for r in rows if r.get("browser")]
    if browser_rows:
        print(
            "\nBrowser (headless Chromium): s from navigation to rendered / to idle; "
            "long tasks total s (longest s); rendered s after the last PartitionHealthQuery"
        )
        print(f"{'page':<52}" + "".join(f"{'N=' + format(r['partitions'], ','):>{width}}"
                                        for r in browser_rows))  # fmt: skip
        for page in (f"asset_page:{ASSET}", f"job_partitions_page:{JOB}"):
            for label, cell in (
                ("rendered / idle (s)", _browser_times),
                ("long tasks total (max) (s)", _browser_tasks),
                ("rendered after data (s)", lambda f: str(f.get("rendered_after_data_s", "-"))),
                ("after idle: long tasks s (refetches)", _browser_after_idle),
            ):
                cells = [cell(r["browser"].get(page) or {}) for r in browser_rows]
                name = f"{page.split(':')[0]} {label}"
                print(f"{name:<52}" + "".join(f"{c:>{width}}" for c in cells))
    print("\nInstance and sensor")
    print(f"{'metric':<52}" + "".join(f"{s:>{width}}" for s in sizes))
    for label, part, key in metrics:
        cells = [str((r.get(part, {}) if part else r).get(key, "-")) for r in rows]
        print(f"{label:<52}" + "".join(f"{c:>{width}}" for c in cells))


def _browser_times(figures: dict[str, Any]) -> str:
    if not figures:
        return "-"
    rendered = figures.get("rendered_s")
    rendered_text = f"{rendered}" if rendered is not None else figures.get("rendered_s_display")
    idle = figures.get("idle_s")
    return f"{rendered_text} / {idle if idle is not None else 'not idle'}"


def _browser_after_idle(figures: dict[str, Any]) -> str:
    if "after_idle_long_task_total_s" not in figures:
        return "-"
    return (
        f"{figures['after_idle_long_task_total_s']} "
        f"({figures.get('after_idle_PartitionHealthQuery_requests')})"
    )


def _browser_tasks(figures: dict[str, Any]) -> str:
    if not figures:
        return "-"
    return f"{figures.get('long_task_total_s')} ({figures.get('long_task_max_s')})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the cold one")
    parser.add_argument("--drops", type=int, default=3, help="chats dropped one after another")
    parser.add_argument("--materialized-fraction", type=float, default=0.5)
    parser.add_argument(
        "--materialized-pattern",
        choices=("random", "oldest"),
        default="random",
        help="which keys are materialized: a random sample (about one status range per"
        " materialization, the worst case for the UI) or the oldest ones (one range)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="per request / per drop, s")
    parser.add_argument(
        "--skip", nargs="+", default=[], choices=("graphql", "sensor"), help="parts not to run"
    )
    parser.add_argument(
        "--browser", action="store_true", help="also time the pages in headless Chromium"
    )
    parser.add_argument(
        "--browser-sizes", type=int, nargs="+", help="sizes to time in the browser (default all)"
    )
    parser.add_argument(
        "--browser-timeout", type=float, default=600, help="per page: rendered within, s"
    )
    parser.add_argument(
        "--browser-idle-timeout",
        type=float,
        default=180,
        help="per page: idle within, s after rendered",
    )
    parser.add_argument(
        "--browser-observe",
        type=float,
        default=20,
        help="per page: watched until, s after rendered (polling may refetch and redo the work)",
    )
    parser.add_argument("--results-name", default="partitions", help="bench-results/<name>.json")
    parser.add_argument("--chromium", type=Path, default=Path("/usr/bin/chromium"))
    args = parser.parse_args()
    if args.browser:
        from benchmarks.browser_timing import BrowserUnavailable, check_available

        try:
            args.chromium_version = check_available(args.chromium)
        except BrowserUnavailable as exc:
            sys.exit(f"--browser: {exc}")
        if args.browser_sizes is None:
            args.browser_sizes = list(args.sizes)
    rows = []
    for size in args.sizes:
        rows.append(measure(size, args))
        save_results(args.results_name, _document(rows, args), echo=False)  # keep what is done
    print_tables(rows)
    path = save_results(args.results_name, _document(rows, args), echo=False)
    print(f"\nsaved {path}")


def _document(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    import dagster

    return {
        "measured_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "dagster": dagster.__version__,
        "cpu_count": os.cpu_count(),
        "note": "shared 2-core machine, other test suites running: indicative figures",
        "settings": {
            "repeats": args.repeats,
            "drops": args.drops,
            "materialized_fraction": args.materialized_fraction,
            "materialized_pattern": args.materialized_pattern,
            "materialized_asset": ASSET,
            "env": ENV,
            "storage": "PostgreSQL (deploy/dagster.postgres.yaml) for instance and warehouse",
            "skipped": args.skip,
            "browser_sizes": args.browser_sizes if args.browser else [],
            "browser_timeout_s": args.browser_timeout if args.browser else None,
            "chromium": getattr(args, "chromium_version", None),
        },
        "results": rows,
    }


if __name__ == "__main__":
    main()
