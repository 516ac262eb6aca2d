"""Launch a reanalysis backfill from the command line: analysis and scoring only (never
speech-to-text), with a chosen prompt version, over all consultations, an upload date range
or selected ones. It asks the running Dagster webserver for an asset backfill, so the
backfill daemon batches 100 consultations per run, exactly as a backfill from the UI.

    python -m cscoach_pipeline.reanalyze --prompt-version v2 --all
    python -m cscoach_pipeline.reanalyze --prompt-version v2 --uploaded-from 2026-11-01 \\
        --uploaded-to 2026-11-30
    python -m cscoach_pipeline.reanalyze --prompt-version v2 --ids team-a__call-01.wav-3f9a1c2e
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from datetime import date
from pathlib import Path

from cscoach_pipeline.defs.analysis.prompts import PROMPT_VERSION_TAG, load_prompt
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.settings import DEFAULT_DATA_DIR, load_settings

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""


def select_consultations(
    warehouse_url: str,
    *,
    uploaded_from: date | None = None,
    uploaded_to: date | None = None,
    ids: list[str] | None = None,
) -> list[str]:
    """Consultations that were analysed before (so they have a transcript), filtered."""
    return WarehouseResource(url=warehouse_url).consultations.analysed(
        uploaded_from=uploaded_from, uploaded_to=uploaded_to, ids=ids
    )


def restore_retired(warehouse_url: str, partitions: list[str], dagster_home: Path) -> list[str]:
    """Partitions the retention removed are registered again in Dagster's instance (the
    one `dagster_home` holds) before the backfill, and all of them are kept for another
    retention period; see defs/retention/policy.py."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef
    from sqlalchemy import make_url

    from cscoach_pipeline.defs.retention.policy import restore_partitions
    from cscoach_pipeline.defs.warehouse.engine import utcnow, with_default_driver

    if not (dagster_home / "dagster.yaml").is_file():
        # InstanceRef.from_dir would quietly make an empty instance there.
        raise FileNotFoundError(
            f"no dagster.yaml in {dagster_home}: pass the deployment's --dagster-home"
        )
    # As `make` does for every Dagster process: a plain postgresql:// means psycopg2.
    if os.environ.get("DAGSTER_PG_URL"):
        url = with_default_driver(make_url(os.environ["DAGSTER_PG_URL"]))
        os.environ["DAGSTER_PG_URL"] = url.render_as_string(hide_password=False)
    store = WarehouseResource(url=warehouse_url).retention
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        return restore_partitions(store, instance, partitions, utcnow())


def launch_backfill(webserver: str, partitions: list[str], prompt_version: str) -> str:
    params = {
        "partitionNames": partitions,
        "assetSelection": [
            {"path": [name]}
            for name in ("consultation_analysis", "quality_metrics", "call_categories")
        ],
        "tags": [{"key": PROMPT_VERSION_TAG, "value": prompt_version}],
    }
    request = urllib.request.Request(
        f"{webserver.rstrip('/')}/graphql",
        data=json.dumps({"query": LAUNCH, "variables": {"params": params}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())["data"]["launchPartitionBackfill"]
    if answer["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"Dagster refused the backfill: {answer.get('message', answer)}")
    return answer["backfillId"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt-version", required=True, help="e.g. v2")
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--all", action="store_true", help="every consultation")
    scope.add_argument("--ids", nargs="+", help="consultation ids (partition keys)")
    scope.add_argument("--uploaded-from", type=date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--uploaded-to", type=date.fromisoformat, help="YYYY-MM-DD, inclusive")
    parser.add_argument("--webserver", default="http://127.0.0.1:3000")
    parser.add_argument(
        "--dagster-home",
        type=Path,
        default=Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DATA_DIR / "dagster_home"),
        help="the deployment's DAGSTER_HOME, where retired partitions are registered again "
        "(default: $DAGSTER_HOME, else data/dagster_home as `make dev` uses)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list, don't launch")
    args = parser.parse_args(argv)
    try:
        load_prompt(args.prompt_version)
    except ValueError as exc:
        parser.error(str(exc))
    warehouse_url = load_settings().warehouse_url
    partitions = select_consultations(
        warehouse_url,
        uploaded_from=args.uploaded_from,
        uploaded_to=args.uploaded_to,
        ids=args.ids,
    )
    if not partitions:
        print("no consultations match", file=sys.stderr)
        return 1
    print(f"{len(partitions)} consultations to re-analyse with prompt {args.prompt_version}")
    if args.dry_run:
        retired = WarehouseResource(url=warehouse_url).retention.retired_among(partitions)
        if retired:
            print(f"{len(retired)} of them retired: their partitions would be registered again")
        print("\n".join(partitions))
        return 0
    try:
        restored = restore_retired(warehouse_url, partitions, args.dagster_home)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    if restored:
        print(f"registered {len(restored)} retired partitions again (partition retention)")
    backfill = launch_backfill(args.webserver, partitions, args.prompt_version)
    # A retention tick already deleting some of them when they were marked: add them back
    # before the backfill daemon looks (it fails a backfill whose partitions disappeared).
    late = restore_retired(warehouse_url, partitions, args.dagster_home)
    if late:
        print(f"registered {len(late)} more that the retention was deleting meanwhile")
    print(f"launched backfill {backfill}: see {args.webserver}/overview/backfills/{backfill}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
