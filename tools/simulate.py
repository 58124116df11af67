#!/usr/bin/env python3
"""Run simulated devices against a running LinkServer, over the network client.

The same SimulatorController the server can load from its configuration,
here in a process of its own: it adds device contexts under ``devices``,
fires their events, and removes them again when it stops.

    python tools/simulate.py --devices 5 --interval 0.5s --seconds 60
    python tools/simulate.py --url http://plant:7341 --token $TOKEN
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from linkserver.client import AuthenticationFailed, Client, ServerUnavailable
from linkserver.client.controllers import run_remote_controller
from linkserver.core.errors import LinkServerError
from linkserver.devices.simulator import SimulatorController


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="server address (default: $LINKSERVER_URL or the local server)")
    parser.add_argument("--user", help="log in as this user")
    parser.add_argument("--password", help="the user's password")
    parser.add_argument("--token", help="an API or session token")
    parser.add_argument("--devices", type=int, default=3, help="how many devices (default 3)")
    parser.add_argument("--interval", default="2s", help="time between measurements (default 2s)")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds (default: Ctrl-C)")
    parser.add_argument("--prefix", default="sim", help="device name prefix (default sim: sim1, sim2...)")
    parser.add_argument("--name", default="simulator", help="controller name, for logging")
    parser.add_argument("--seed", type=int, help="random seed, for repeatable runs")
    parser.add_argument("--keep-devices", action="store_true", help="leave the device contexts when stopping")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        controller = SimulatorController(
            devices=args.devices, interval=args.interval, prefix=args.prefix, seed=args.seed
        )
    except (ValueError, LinkServerError) as exc:
        parser.error(str(exc))
    try:
        with Client(args.url, user=args.user, password=args.password, token=args.token) as client:
            print(f"simulating {args.devices} devices at {client.url}; Ctrl-C stops", file=sys.stderr)
            handle = run_remote_controller(
                controller,
                client,
                name=args.name,
                seconds=args.seconds,
                remove_devices=not args.keep_devices,
            )
    except ServerUnavailable as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 3
    except AuthenticationFailed as exc:
        print(f"simulate: authentication failed: {exc}", file=sys.stderr)
        return 4
    except LinkServerError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1
    print(
        f"stopped after {controller.ticks} ticks; devices left: {handle.devices or 'none'}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
