#!/usr/bin/env python3
"""Where the outbox drain's time goes: ``bus.py --part drain`` with its parts timed.

Not a benchmark (no goal): runs bus.py's drain part (same arguments: ``--outage``,
``--rate``, ...) with wrappers that add up, from the bridge's reconnect until the
backlog is drained, the seconds spent in the outbox's page reads and deletes, the
publishes, the writer's commits and the confirms; samples every 5 ms what the
publisher thread is doing (waiting = for confirms or work) and how many events are
in flight; and prints the confirm latency (handed to the connection's thread to
confirmed) in the bursts before and after and in the drain.

    python tools/bench/trace_drain.py [--outage 60] [--rate 1000] [--switch SECONDS]
"""

import atexit
import collections
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bus  # noqa: E402

from linkserver.bridges.amqp import AmqpBridge  # noqa: E402
from linkserver.history.outbox import SqlOutbox  # noqa: E402
from linkserver.history.writer import Writer  # noqa: E402
from linkserver.server.outbound import Outbound  # noqa: E402

T = collections.defaultdict(float)
N = collections.defaultdict(int)
ACT = {}


def timed(cls, name, key):
    f = getattr(cls, name)

    def g(self, *a, **k):
        t = time.perf_counter()
        ident = threading.get_ident()
        prev = ACT.get(ident)
        ACT[ident] = key
        try:
            return f(self, *a, **k)
        finally:
            ACT[ident] = prev
            T[key] += time.perf_counter() - t
            N[key] += 1
            if key == "page":
                N["rows"] += a[1] if len(a) > 1 else 0

    setattr(cls, name, g)


timed(SqlOutbox, "page", "page")
timed(SqlOutbox, "delete", "delete")
timed(Outbound, "_publish", "publish")
timed(Writer, "_commit", "commit")
timed(Outbound, "confirmed", "confirmed")
walkpage = Outbound._walk_page


def wp(self):
    kind = self._walk
    r = walkpage(self)
    N["walkrows_" + str(kind)] += len(r)
    N["walkpages_" + str(kind)] += 1
    return r


Outbound._walk_page = wp
SENT = {}
LAT = collections.defaultdict(list)
PHASE = ["before"]
send = AmqpBridge._send


def traced_send(self, messages):
    now = time.perf_counter()
    for m in messages:
        SENT[m[0]] = now
    return send(self, messages)


AmqpBridge._send = traced_send
confirmed = Outbound.confirmed


def traced_confirmed(self, ids):
    ids = list(ids)
    now = time.perf_counter()
    lat = LAT[PHASE[0]]
    for i in ids:
        t = SENT.pop(i, None)
        if t is not None:
            lat.append(now - t)
    return confirmed(self, ids)


Outbound.confirmed = traced_confirmed
HOST = {}
orig_add = bus.LinkServer.add_bridge


def add_bridge(self, *a, **k):
    h = orig_add(self, *a, **k)
    HOST["h"] = h
    return h


bus.LinkServer.add_bridge = add_bridge
SAMPLES = collections.Counter()
INFL = []
sampling = threading.Event()


def sampler():
    while True:
        time.sleep(0.005)
        if not sampling.is_set():
            continue
        h = HOST.get("h")
        if h is None:
            continue
        ob = h.outbound
        th = ob._thread
        act = ACT.get(th.ident) if th else None
        SAMPLES[act or "wait"] += 1
        INFL.append(ob.in_flight)


threading.Thread(target=sampler, daemon=True).start()

orig_drain = bus.drain


def beam_cpu():
    """CPU seconds of the local RabbitMQ (beam.smp), or 0 when it cannot be read."""
    import os

    total = 0.0
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().split()
        except (OSError, ValueError):
            continue
        if fields[1] == "(beam.smp)":
            total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_line(what, events, started):
    ours, beam = time.process_time() - started[0], beam_cpu() - started[1]
    print(
        f"{what}: {events} published, CPU per event: this process {ours / max(1, events) * 1e6:.0f} us, "
        f"RabbitMQ {beam / max(1, events) * 1e6:.0f} us",
        flush=True,
    )


def drain(rabbit, tmp, outage, rate, steady):
    orig_wait = bus.wait_until
    state = {}
    orig_burst = bus.burst

    def burst(host, fire, events):
        PHASE[0] = "burst-" + ("before" if "t" not in state else "after")
        started = (time.process_time(), beam_cpu())
        try:
            return orig_burst(host, fire, events)
        finally:
            cpu_line(PHASE[0], events, started)

    bus.burst = burst

    def wait_until(cond, timeout, what):
        orig_wait(cond, timeout, what)
        if what == "the confirms" or what == "the outbox to empty":
            pass
        if what == "the bridge to reconnect":
            PHASE[0] = "drain"
            T.clear()
            N.clear()
            SAMPLES.clear()
            INFL.clear()
            state["t"] = time.perf_counter()
            state["cpu"] = (time.process_time(), beam_cpu())
            state["published"] = HOST["h"].outbound.stats.published
            sampling.set()
        if what == "the outbox to drain":
            sampling.clear()
            PHASE[0] = "tail"
            el = time.perf_counter() - state["t"]
            cpu_line("drain", HOST["h"].outbound.stats.published - state["published"], state["cpu"])
            print(
                f"drain {el:.2f} s; per part (s, calls):",
                {k: (round(v, 2), N[k]) for k, v in T.items()},
                {k: v for k, v in N.items() if k.startswith("walk")},
                "page limit rows",
                N["rows"],
                flush=True,
            )
            tot = sum(SAMPLES.values())
            print(
                "publisher thread:",
                {k: f"{v / tot:.0%}" for k, v in SAMPLES.items()},
                "in flight mean",
                sum(INFL) / max(1, len(INFL)),
                "full",
                sum(1 for x in INFL if x >= 900) / max(1, len(INFL)),
                flush=True,
            )

    bus.wait_until = wait_until
    try:
        return orig_drain(rabbit, tmp, outage, rate, steady)
    finally:
        bus.wait_until = orig_wait


bus.drain = drain


def report():
    for k, v in LAT.items():
        v.sort()
        n = len(v)
        if n:
            print(
                f"confirm latency {k}: n {n} p50 {v[n // 2] * 1000:.0f} ms "
                f"p90 {v[int(n * 0.9)] * 1000:.0f} ms",
                flush=True,
            )


atexit.register(report)
if "--switch" in sys.argv:  # the GIL's switch interval in this process (the server's), seconds
    at = sys.argv.index("--switch")
    sys.setswitchinterval(float(sys.argv[at + 1]))
    del sys.argv[at : at + 2]
sys.argv = ["bus.py", "--part", "drain", *sys.argv[1:]]
sys.exit(bus.main())
