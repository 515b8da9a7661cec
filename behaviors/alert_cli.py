"""``alerts``: list or export the alerts the patrol robot recorded.

    alerts list [--db PATH]
    alerts export --format csv|json --out FILE [--db PATH]

It opens the store read-only, so it is safe to run while the robot is writing. A missing
or foreign database is one line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import List, Optional, Sequence

from behaviors.alerts import DEFAULT_DB, AlertRecord, read_alerts
from perception.errors import InputError

_FIELDS = ("id", "stamp", "wall_time", "track_id", "label", "score", "x_min", "y_min",
           "x_max", "y_max", "robot_x", "robot_y", "robot_yaw", "face_path", "frame_path",
           "world", "session")


def _parser() -> argparse.ArgumentParser:
    summary = (__doc__ or "").strip().split("\n")[0]
    parser = argparse.ArgumentParser(prog="alerts", description=summary)
    sub = parser.add_subparsers(dest="command", metavar="{list,export}")
    sub.required = True
    db_help = "alert store (default %s, or $MASK_PATROL_ALERTS_DB)" % DEFAULT_DB
    listing = sub.add_parser("list", help="print the alerts as a table")
    listing.add_argument("--db", default=DEFAULT_DB, help=db_help)
    export = sub.add_parser("export", help="write the alerts to a CSV or JSON file")
    export.add_argument("--db", default=DEFAULT_DB, help=db_help)
    export.add_argument("--format", required=True, choices=("csv", "json"))
    export.add_argument("--out", required=True, help="file to write ('-' = stdout)")
    return parser


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else spec % value


def format_table(records: Sequence[AlertRecord]) -> str:
    header = ("id", "wall time (UTC)", "stamp", "track", "label", "score", "robot x,y,yaw",
              "face snapshot")
    rows: List[Sequence[str]] = [header]
    for r in records:
        pose = "-"
        if r.robot_x is not None:
            pose = "%.2f,%.2f,%.2f" % (r.robot_x, r.robot_y, r.robot_yaw)
        rows.append((str(r.id), r.wall_time, "%.2f" % r.stamp, str(r.track_id), r.label,
                     "%.2f" % r.score, pose, r.face_path))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def export(records: Sequence[AlertRecord], fmt: str, out) -> None:
    if fmt == "json":
        json.dump([r.as_dict() for r in records], out, indent=2)
        out.write("\n")
        return
    writer = csv.DictWriter(out, fieldnames=_FIELDS)
    writer.writeheader()
    for r in records:
        writer.writerow(r.as_dict())


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        records = read_alerts(args.db)
        if args.command == "list":
            if not records:
                print("no alerts in %s" % args.db)
            else:
                print(format_table(records))
            return 0
        if args.out == "-":
            export(records, args.format, sys.stdout)
        else:
            try:
                with open(args.out, "w", newline="") as handle:
                    export(records, args.format, handle)
            except OSError as exc:
                raise InputError("cannot write %s (%s); pass a writable --out path"
                                 % (args.out, exc.strerror or exc))
            print("wrote %d alert(s) to %s" % (len(records), os.path.abspath(args.out)),
                  file=sys.stderr)
        return 0
    except InputError as exc:
        print("alerts: error: %s" % exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
