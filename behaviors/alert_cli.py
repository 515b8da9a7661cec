"""``alerts``: list, export, serve or purge the alerts the patrol robot recorded.

    alerts list [--db PATH]
    alerts export --format csv|json --out FILE [--db PATH]
    alerts serve [--db PATH ...] [--host 127.0.0.1] [--port 8770] [--token-file F]
    alerts purge --older-than 30d [--db PATH] [--reason TEXT] [--by NAME]

``list`` and ``export`` open the store read-only, so they are safe to run while the robot is
writing; ``serve`` is the staff console (behaviors/console); ``purge`` deletes old snapshot
files and records each purge in the store's events table. A missing or foreign database, or
any other bad input, is one line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

from behaviors.alerts import (DEFAULT_DB, AlertRecord, AlertStore, EventRecord, alert_status,
                              parse_age, read_alerts, read_events)
from common.errors import InputError

_FIELDS = ("id", "stamp", "wall_time", "track_id", "label", "score", "x_min", "y_min",
           "x_max", "y_max", "robot_x", "robot_y", "robot_yaw", "face_path", "frame_path",
           "world", "session")


def _parser() -> argparse.ArgumentParser:
    summary = (__doc__ or "").strip().split("\n")[0]
    parser = argparse.ArgumentParser(prog="alerts", description=summary)
    sub = parser.add_subparsers(dest="command", metavar="{list,export,serve,purge}")
    sub.required = True
    db_help = "alert store (default %s, or $MASK_PATROL_ALERTS_DB)" % DEFAULT_DB
    listing = sub.add_parser("list", help="print the alerts as a table")
    listing.add_argument("--db", default=DEFAULT_DB, help=db_help)
    export = sub.add_parser("export", help="write the alerts to a CSV or JSON file")
    export.add_argument("--db", default=DEFAULT_DB, help=db_help)
    export.add_argument("--format", required=True, choices=("csv", "json"))
    export.add_argument("--out", required=True, help="file to write ('-' = stdout)")
    serve = sub.add_parser("serve", help="the staff console: live alerts in a web page")
    serve.add_argument("--db", action="append", metavar="[ROBOT=]PATH",
                       help="alert store; repeat for several robots (default %s)" % DEFAULT_DB)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; any other needs a token)")
    serve.add_argument("--port", type=int, default=8770, help="port (default 8770)")
    serve.add_argument("--token-file", default=None,
                       help="file holding the access token (or set MASK_PATROL_CONSOLE_TOKEN)")
    purge = sub.add_parser("purge", help="delete old snapshots; the rows and a record stay")
    purge.add_argument("--db", default=DEFAULT_DB, help=db_help)
    purge.add_argument("--older-than", required=True, metavar="AGE",
                       help="age of the alerts whose snapshots go, e.g. 30d, 12h, 2w")
    purge.add_argument("--reason", default="", help="why (recorded; default names the age)")
    purge.add_argument("--by", default="", help="who (recorded; default the login name)")
    return parser


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else spec % value


def format_table(records: Sequence[AlertRecord], events: Sequence[EventRecord] = ()) -> str:
    """The alerts as a text table; each one's status (open, acknowledged, resolved) comes
    from ``events``, the store's events table."""
    by_alert: Dict[int, List[EventRecord]] = {}
    for event in events:
        by_alert.setdefault(event.alert_id, []).append(event)
    header = ("id", "wall time (UTC)", "stamp", "track", "label", "status", "score",
              "robot x,y,yaw", "face snapshot")
    rows: List[Sequence[str]] = [header]
    for r in records:
        pose = "-"
        if r.robot_x is not None:
            pose = "%.2f,%.2f,%.2f" % (r.robot_x, r.robot_y, r.robot_yaw)
        rows.append((str(r.id), r.wall_time, "%.2f" % r.stamp, str(r.track_id), r.label,
                     alert_status(by_alert.get(r.id, [])), "%.2f" % r.score, pose,
                     r.face_path))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def export(records: Sequence[AlertRecord], fmt: str, out,
           extra: Optional[Sequence[Dict[str, Any]]] = None) -> None:
    """Write ``records`` as CSV or JSON; ``extra`` (one dict per record, same keys in each)
    adds columns after the store's own, as the console adds robot and status."""
    rows = [r.as_dict() for r in records]
    fields = list(_FIELDS)
    if extra:
        for row, more in zip(rows, extra):
            row.update(more)
        fields += [k for k in extra[0] if k not in fields]
    if fmt == "json":
        json.dump(rows, out, indent=2)
        out.write("\n")
        return
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)


def purge(db: str, older_than: str, reason: str = "", by: str = "") -> int:
    """``alerts purge``: never creates a store; prints what it removed."""
    seconds = parse_age(older_than)
    if not os.path.isfile(db):
        raise InputError("no alert store at %s (file not found); pass --db with the "
                         "alerts.sqlite that the patrol node writes" % (db,))
    actor = by or "%s (alerts purge)" % (getpass.getuser() or "unknown user")
    with AlertStore(db) as store:
        events = store.purge(seconds, reason=reason or "alerts purge --older-than %s"
                             % older_than, actor=actor)
    files = sum(len(json.loads(e.detail)["removed"]) for e in events)
    print("purged %d snapshot file(s) of %d alert(s) older than %s in %s; the rows stay, each "
          "purge is in the events table" % (files, len(events), older_than, db))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from behaviors.console.server import serve

            return serve(args.db or [DEFAULT_DB], args.host, args.port, args.token_file)
        if args.command == "purge":
            return purge(args.db, args.older_than, args.reason, args.by)
        records = read_alerts(args.db)
        if args.command == "list":
            if not records:
                print("no alerts in %s" % args.db)
            else:
                print(format_table(records, read_events(args.db)))
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
    except (InputError, ValueError) as exc:
        print("alerts: error: %s" % exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
