"""Re-queue consultations for a fresh run: failed ones after fixing what failed them, or
any status. The recovery sensor launches the runs on its next tick (new run keys; attempts
count again from 1). The same is a job in the Dagster UI: `requeue_consultations`.

    python -m cscoach_pipeline.requeue --status failed
    python -m cscoach_pipeline.requeue --status failed --kind outage cancelled
    python -m cscoach_pipeline.requeue --ids team-a__call-01.wav-3f9a1c2e --status succeeded
"""

from __future__ import annotations

import argparse
import sys

from cscoach_pipeline.defs.recovery.policy import REQUEUABLE_STATUSES, FailureKind
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.settings import load_settings

KINDS = [kind.value for kind in FailureKind if kind != FailureKind.SUPERSEDED]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--status", nargs="+", default=["failed"], choices=REQUEUABLE_STATUSES)
    parser.add_argument("--kind", nargs="+", default=[], choices=KINDS, help="failure kinds")
    parser.add_argument("--ids", nargs="+", default=[], help="consultation ids")
    parser.add_argument("--dry-run", action="store_true", help="list, don't re-queue")
    args = parser.parse_args(argv)
    selected = WarehouseResource(url=load_settings().warehouse_url).statuses.mark_for_requeue(
        statuses=args.status,
        ids=args.ids,
        failure_kinds=args.kind,
        dry_run=args.dry_run,
    )
    if not selected:
        print("no consultations match", file=sys.stderr)
        return 1
    verb = "would re-queue" if args.dry_run else "re-queued"
    print(f"{verb} {len(selected)} consultations; the recovery sensor launches their runs")
    if args.dry_run:
        print("\n".join(selected))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
