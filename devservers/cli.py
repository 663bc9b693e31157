"""`scripts/services start|stop|status [--only NAME]`: the local servers, on 127.0.0.1 only.

`start` is idempotent and waits until each server answers; `stop` stops only what `start`
started (pid files under `.services/`); `status` prints endpoint, up/down and pid of each.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from devservers import registry
from devservers.process import ServiceError

logger = logging.getLogger(__name__)


def _names(only: list[str] | None, default: tuple[str, ...]) -> list[str]:
    if not only:
        return list(default)
    names: list[str] = []
    for chunk in only:
        for name in chunk.split(","):
            name = name.strip()
            if name not in registry.NAMES:
                raise ServiceError(f"unknown server {name!r} (known: {', '.join(registry.NAMES)})")
            if name not in names:
                names.append(name)
    return names


def cmd_start(names: list[str]) -> int:
    """Start each server unless ours already runs; print one status line each."""
    for name in names:
        service = registry.get(name)
        before = service.owned_pid()
        status = service.start()
        if not status.owned:
            verb = "left alone"
        else:
            verb = "started" if before is None else "already running"
        print(f"{status.line()}  ({verb})", flush=True)
    return 0


def cmd_stop(names: list[str]) -> int:
    """Stop each server that `start` started; leave anything else alone."""
    for name in names:
        service = registry.get(name)
        pid = service.owned_pid()
        if service.stop():
            print(f"{name:<10} stopped (pid {pid})", flush=True)
        elif service.answering():
            print(f"{name:<10} left alone: answering but not started by scripts/services", flush=True)
        else:
            print(f"{name:<10} not running", flush=True)
    return 0


def cmd_status(names: list[str], required: list[str], as_json: bool) -> int:
    """Print endpoint, up/down and pid of NAMES; exit 1 when one of REQUIRED is down."""
    statuses = [registry.get(name).status() for name in names]
    if as_json:
        print(json.dumps([status.as_dict() for status in statuses]))
    else:
        for status in statuses:
            print(status.line())
    return 0 if all(status.up for status in statuses if status.name in required) else 1


def build_parser() -> argparse.ArgumentParser:
    """The command line of scripts/services."""
    parser = argparse.ArgumentParser(prog="scripts/services", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    only_help = f"one of {', '.join(registry.NAMES)} (repeat or comma-separate)"
    start = commands.add_parser("start", help=f"start {' and '.join(registry.DEFAULT)} (or --only)")
    start.add_argument("--only", action="append", metavar="NAME", help=only_help)
    stop = commands.add_parser("stop", help="stop what start started")
    stop.add_argument("--only", action="append", metavar="NAME", help=only_help)
    status = commands.add_parser(
        "status",
        help=f"endpoint, up/down and pid of each server (exit 1 if {'/'.join(registry.DEFAULT)} is down)",
    )
    status.add_argument("--only", action="append", metavar="NAME", help=only_help)
    status.add_argument("--json", action="store_true", help="one JSON document on stdout")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; errors are one line on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "start":
            return cmd_start(_names(args.only, registry.DEFAULT))
        if args.command == "stop":
            return cmd_stop(_names(args.only, registry.NAMES))
        shown = _names(args.only, registry.NAMES)
        return cmd_status(shown, _names(args.only, registry.DEFAULT), args.json)
    except ServiceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
