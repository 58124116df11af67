"""Alert rules running in the server: one subscription per rule, timers, fires, stored state.

Each enabled rule (the ``rules:`` section, docs/rules.md) is one engine
subscription on its mask, event name and filter, so the subscription index
(core/subscriptions.py) finds the rules an event concerns without looking at
the others. The subscription feeds the rule's :class:`RuleState`
(core/rule_state.py); what it returns is fired as an ordinary event in the
rule's alert context through :meth:`Engine.fire`, so history, alarms,
bridges and pop-ups see rule alerts like any other event. An APScheduler job
ticks the rules that act on time (absence, the end of a count window,
escalation steps); another writes the keys that changed to the
``rule_state`` table every five seconds (and at stop), from which :meth:`start`
restores them: a restart continues every window, open alert and escalation. With
them goes a watermark (the newest event id each rule's state has seen); a start
replays the persistent events committed after it through the restored state, so
a crash loses only what non-persistent events did since the last write, and an
alert fired before the crash is recognised in history and not fired again.

A dry run (:meth:`RuleHost.test`) replays stored history through a fresh
state of the rule and fires nothing.

Several nodes on one database: one of them runs the rules, the holder of the
database's ``rules`` lock (:meth:`HistoryStore.exclusive`: a PostgreSQL advisory
lock, released when its node dies); the others try to take it every few
seconds and, once they hold it, continue from the stored state. With cross-node
delivery the leader sees every node's events, so alerts are fired once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from linkserver.core.alarms import AlarmState
from linkserver.core.errors import BadRequest, EventNotFound, LinkServerError, UnknownRule
from linkserver.core.events import Event
from linkserver.core.filters import And, Filter, Or
from linkserver.core.filters.labels import bind_filter
from linkserver.core.paths import compile_mask, display
from linkserver.core.rule_state import (
    AbsenceState,
    EscalationState,
    RuleState,
    ack_times,
    catch_up,
    new_state,
    replay,
)
from linkserver.core.rules import ALARMS, ALERT, CLEARED, ESCALATED, PER_CONTEXT, Firing, Rule, RuleKind
from linkserver.history.alarms import AlarmQuery, AlarmStore
from linkserver.history.base import Held, HistoryQuery, HistoryStore
from linkserver.history.matching import encode_cursor
from linkserver.history.rule_state import Change, RuleStateStore, open_rule_state
from linkserver.server.delivery import Subscription
from linkserver.server.engine import CHILD_ADDED, CHILD_REMOVED, Engine

log = logging.getLogger("linkserver.rules")

COMPONENT = "rules"
TICK = 1.0  # seconds between ticks of the timed rules
FLUSH = 5.0  # seconds between writes of the changed state (a start replays what follows: docs/rules.md)
LEAD_RETRY = 5.0  # seconds between a standby node's tries to take the rules over
LEAD_LOCK, LEAD_JOB, TICK_JOB = "rules", "linkserver-rules-lead", "linkserver-rules-tick"
FLUSH_JOB = "linkserver-rules-flush"
MAX_DEPTH = 8  # alerts firing rules firing alerts...: stop there
# The host's row of rule_state (no rule is named ""): up to where the stored state has seen
# history, the watermark a start replays the persistent events after (docs/rules.md).
MARKS, MARKS_KEY = "", "watermark"
SEEN = "_seen"  # in a key's row: the rule's newest event id when the row was written
REPLAY_FIRED = (ALERT, CLEARED, ESCALATED)


def _now() -> datetime:
    return datetime.now(UTC)


class _Running:
    """One rule with its state, lock and subscription."""

    def __init__(self, rule: Rule, enabled: bool) -> None:
        self.rule = rule
        self.enabled = enabled
        self.state: RuleState = new_state(rule)
        self.lock = threading.Lock()  # never taken twice by one thread: fires happen outside it
        self.subscription: Subscription | None = None
        self.fired = 0
        self.last_fired: datetime | None = None
        self.seen = 0  # the newest event id observed: the state holds every event up to it


class RuleHost:
    """The rules of one server. ``rules``: (rule, enabled); disabled rules are listed and
    dry-run but not evaluated. Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        history: HistoryStore,
        rules: Sequence[tuple[Rule, bool]] = (),
        *,
        tick: float = TICK,
        flush: float = FLUSH,
        lead_retry: float = LEAD_RETRY,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.engine = engine
        self.history = history
        self.tick_interval, self.flush_interval = tick, flush
        self.clock = clock
        self._rules = {rule.name: _Running(_bound(rule, engine), enabled) for rule, enabled in rules}
        self._store: RuleStateStore | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._flush_lock = threading.Lock()
        self._soon_lock = threading.Lock()
        self._soon_pending = False  # the soon writer is woken and has not taken the keys yet
        self._soon_keys: set[tuple[str, str]] = set()  # (rule, key) rows it is to write
        self._soon_thread: threading.Thread | None = None  # the soon writer, from the first alert on
        self._soon_wake = threading.Event()
        self._soon_stop = False
        self._depth = threading.local()
        self._tree_subscriptions: list[Subscription] = []
        self.alarms: AlarmStore | None = None  # the alarm list, for escalations of alarms
        self.lead_retry = lead_retry
        self.leading = False  # this node evaluates the rules (one node of a database does)
        self._lease: AbstractContextManager[Held] | None = None
        self._held: Held | None = None
        # Re-entrant: stop() flushes under it, and a flush asks _still_leading, which takes it.
        self._lead_lock = threading.RLock()
        # Every event up to this id was delivered to every rule before the last interval write
        # (it was the newest one any rule had seen at the write before): a rule that saw nothing
        # newer has seen all history up to it. 0: not known (the first start).
        self._mark = 0
        self.replayed = 0  # events replayed at the last start (tests, logs)
        self._marks_written = False  # this start's watermark is stored

    @property
    def rules(self) -> list[Rule]:
        return [running.rule for running in self._rules.values()]

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Run the rules here if no other node of this database does (the ``rules`` lock of
        :meth:`HistoryStore.exclusive`); otherwise try again every ``lead_retry`` seconds
        and take over, with the state the other node stored, once it is gone."""
        if not self._rules:
            return
        self._store = open_rule_state(self.history)
        scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        scheduler.start()
        self._scheduler = scheduler
        if not self.try_lead():
            scheduler.add_job(self._lead_job, "interval", seconds=self.lead_retry, id=LEAD_JOB)
            log.info("alert rules: another node of this database runs them; this one takes over if it stops")

    def try_lead(self) -> bool:
        """Take the ``rules`` lock and start evaluating, if no one holds it; whether this node leads."""
        with self._lead_lock:
            if self.leading:
                return True
            if self._scheduler is None:
                return False  # stopped
            lease = self.history.hold(LEAD_LOCK)
            held = lease.__enter__()
            if not held:
                lease.__exit__(None, None, None)
                return False
            self._lease, self._held = lease, held
            try:
                self._activate()
            except BaseException:
                self._release()
                raise
            self.leading = True
            return True

    def _lead_job(self) -> None:
        try:
            if self.try_lead() and self._scheduler is not None:
                self._scheduler.remove_job(LEAD_JOB)
        except Exception:
            log.exception("alert rules: could not take over")

    def _activate(self) -> None:
        """Restore the stored state, subscribe every enabled rule, start the timers.

        The alert context of a rule is added (under its parent) when missing.
        """
        assert self._store is not None and self._scheduler is not None
        stored = self._store.load()
        marks = stored.pop(MARKS, {}).get(MARKS_KEY)
        self._store.forget([name for name in stored if name not in self._rules])
        now = self.clock()
        newest = self._newest_id()
        late: list[tuple[_Running, list[Firing]]] = []
        for running in self._rules.values():
            if not running.enabled:
                continue
            rule = running.rule
            running.state = new_state(rule)  # what the last leader stored, nothing older
            rows = stored.get(rule.name, {})
            seen = {key: int(row.pop(SEEN, 0) or 0) for key, row in rows.items()}
            running.state.load(rows, now)
            if marks is not None and rule.source != ALARMS:
                watermark = max(int(marks.get("seen", {}).get(rule.name, 0)), int(marks.get("mark", 0)))
                # Nothing committed after it (a clean stop wrote everything): no query per rule.
                fired = self._catch_up(running, watermark, seen) if watermark < newest else []
                if fired:
                    late.append((running, fired))
            running.seen = max(running.seen, newest)
            if isinstance(running.state, AbsenceState) and rule.per == PER_CONTEXT:
                running.state.seed(self._watched_contexts(rule), now)
            self._ensure_alert_context(rule)
            if rule.source == ALARMS:  # polled from the alarm list by tick
                continue
            running.subscription = self.engine.listen(
                rule.mask, rule.event, self._listener(running), filter=_combined(rule)
            )
        self._mark = newest
        self._marks_written = False
        self.leading = True  # for the writes below (try_lead says so again)
        for running, fired in late:  # subscribed: rules on alerts see these
            self._fire(running, fired)
        self.flush()  # the watermark of this start: a crash from here on replays from it
        self._watch_tree()
        self._scheduler.add_job(self.tick, "interval", seconds=self.tick_interval, id=TICK_JOB)
        self._scheduler.add_job(self.flush, "interval", seconds=self.flush_interval, id=FLUSH_JOB)
        log.info("%d alert rules running on this node", sum(1 for r in self._rules.values() if r.enabled))

    def stop(self) -> None:
        """Stop the timers and subscriptions, store what changed, let another node lead."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        soon = self._soon_thread
        if soon is not None:  # an alert's own write ends before the last flush (and the release)
            self._soon_stop = True
            self._soon_wake.set()
            soon.join(10)
            with self._soon_lock:  # what it had not taken is still dirty: the flush below writes it
                self._soon_pending = False
                self._soon_keys.clear()
        with self._lead_lock:
            self._unsubscribe()
            if self.leading:
                try:
                    self.flush()
                except Exception:
                    log.exception("could not store the state of the alert rules")
            self._release()

    def _unsubscribe(self) -> None:
        for running in self._rules.values():
            if running.subscription is not None:
                running.subscription.cancel()
                running.subscription = None
        for subscription in self._tree_subscriptions:
            subscription.cancel()
        self._tree_subscriptions.clear()

    def _still_leading(self) -> bool:
        """Whether this node still holds the rules lock; if it lost it (on PostgreSQL the lock
        ends with its connection: a database restart, a cut), step down at once, so that two
        nodes never evaluate for longer than one tick, and try to lead again like a standby.
        The state since the last flush is dropped: the next leader starts from the stored one."""
        held = self._held
        if not self.leading or held is None or held.still_held():
            return self.leading
        log.warning(
            "alert rules: this node lost the rules lock (its database connection ended); it stops "
            "evaluating them and takes them over again if no other node has"
        )
        with self._lead_lock:
            self._unsubscribe()
            scheduler = self._scheduler
            if scheduler is not None:
                for job in (TICK_JOB, FLUSH_JOB):
                    with contextlib.suppress(JobLookupError):
                        scheduler.remove_job(job)
            self._release()
            if scheduler is not None:
                scheduler.add_job(
                    self._lead_job, "interval", seconds=self.lead_retry, id=LEAD_JOB, replace_existing=True
                )
        return False

    def _release(self) -> None:
        lease, self._lease, self._held = self._lease, None, None
        self.leading = False
        if lease is not None:
            try:
                lease.__exit__(None, None, None)
            except Exception:
                log.exception("alert rules: could not release the rules lock")

    def _watched_contexts(self, rule: Rule) -> Iterator[str]:
        for context in self.engine.tree.match(rule.mask):
            if rule.event in context.definitions:
                yield display(context.path)

    def _watch_tree(self) -> None:
        """Absence rules per context watch contexts added later from when they are added, and
        stop watching removed ones (childAdded / childRemoved of their parents)."""
        if not any(self._silence_rules()):
            return
        for name, handle in ((CHILD_ADDED, self._context_added), (CHILD_REMOVED, self._context_removed)):
            try:
                self._tree_subscriptions.append(self.engine.listen("**", name, handle))
            except LinkServerError:  # no context defines it: no such changes are told
                continue

    def _silence_rules(self) -> Iterator[tuple[_Running, AbsenceState]]:
        for running in self._rules.values():
            if (
                running.enabled
                and isinstance(running.state, AbsenceState)
                and running.rule.per == PER_CONTEXT
            ):
                yield running, running.state

    def _context_added(self, event: Event) -> None:
        path = str(event.record.get("path", ""))
        context = self.engine.tree.find(path)
        if context is None:
            return
        for running, state in self._silence_rules():
            rule = running.rule
            if rule.event in context.definitions and compile_mask(rule.mask).matches(path):
                with running.lock:
                    state.seed([display(path)], event.created)

    def _context_removed(self, event: Event) -> None:
        path = str(event.record.get("path", ""))
        for running, state in self._silence_rules():
            with running.lock:
                gone = [key for key in state.seen if key == path or key.startswith(path + ".")]
                state.forget(gone)

    def _ensure_alert_context(self, rule: Rule) -> None:
        if self.engine.tree.find(rule.alert) is None:
            self.engine.add_context(rule.alert, description=f"Alerts of rule {rule.name}")

    # -- evaluation ------------------------------------------------------

    def _listener(self, running: _Running) -> Callable[[Event], None]:
        state, lock, escalation = running.state, running.lock, running.rule.kind is RuleKind.ESCALATION
        tree = self.engine.tree

        def observe(event: Event) -> None:
            with lock:
                fired = state.observe(event, event.created)
                if event.id > running.seen:
                    running.seen = event.id
            if fired:
                self._fire(running, fired)

        def observe_acknowledgeable(event: Event) -> None:
            if _needs_acknowledgement(tree, event):
                observe(event)

        return observe_acknowledgeable if escalation else observe

    def tick(self) -> None:
        """Let time act on every timed rule (the scheduler's job; tests call it directly)."""
        if not self._still_leading():
            return
        now = self.clock()
        for running in self._rules.values():
            if not (running.enabled and running.rule.timed):
                continue
            if running.rule.source == ALARMS:
                self._tick_alarms(running, now)
                continue
            with running.lock:
                fired = running.state.tick(now, self._acknowledged)
            if fired:
                self._fire(running, fired)

    def _tick_alarms(self, running: _Running, now: datetime) -> None:
        """An escalation of the alarm list: the open (unacknowledged) alarms it selects are
        escalated; an alarm acknowledged or cleared is forgotten."""
        if self.alarms is None:
            return
        try:
            alarms = list(self._open_alarms(running.rule))
        except Exception:
            log.exception("rule %s could not read the alarm list", running.rule.name)
            return
        state = running.state
        assert isinstance(state, EscalationState)
        open_ids = {str(alarm.id) for alarm in alarms}
        with running.lock:
            state.retain(open_ids)
            for alarm in alarms:
                state.observe(_alarm_event(alarm), now)
            fired = state.tick(now, lambda alarm_id, _: str(alarm_id) not in open_ids)
        if fired:
            self._fire(running, fired)

    def _open_alarms(self, rule: Rule) -> Iterator[Any]:
        assert self.alarms is not None
        cursor: str | None = None
        while True:
            page = self.alarms.query(
                AlarmQuery(
                    masks=(rule.mask,),
                    names=(rule.event,),
                    states=(AlarmState.OPEN,),
                    filter=rule.filter,
                    newest_first=False,
                    limit=10_000,
                    cursor=cursor,
                )
            )
            yield from page.alarms
            cursor = page.next_cursor
            if cursor is None:
                return

    def _acknowledged(self, event_id: int, now: datetime) -> bool:
        try:
            return self.history.get(event_id).acknowledged
        except EventNotFound:
            return True  # deleted or purged: nothing left to escalate
        except Exception:
            log.exception("could not read event %d to see whether it was acknowledged", event_id)
            return False

    def _fire(self, running: _Running, firings: list[Firing]) -> None:
        depth = getattr(self._depth, "value", 0)
        if depth >= MAX_DEPTH:
            log.warning(
                "rule %s: alerts fire rules %d deep; not firing %s", running.rule.name, depth, firings
            )
            return
        self._depth.value = depth + 1
        try:
            for firing in firings:
                try:
                    event = self.engine.fire(
                        running.rule.alert, firing.event, firing.data, level=firing.level, author=COMPONENT
                    )
                except Exception:
                    log.exception(
                        "rule %s could not fire %s in %s", running.rule.name, firing.event, running.rule.alert
                    )
                    continue
                with running.lock:
                    running.state.fired(firing, event.id)
                    running.fired += 1
                    running.last_fired = event.created
        finally:
            self._depth.value = depth
        self._flush_soon(running.rule.name, [firing.key for firing in firings])

    def _flush_soon(self, rule: str, keys: Iterable[str]) -> None:
        """An alert opened, cleared or escalated: store those keys' rows now, not at the next
        interval, so a crash right after does not forget it. Only those keys: in a storm of
        alerts a write of every changed key after each would keep the writer busy (the other
        keys wait for the interval). A thread of its own, not the interval job moved to now:
        APScheduler skips a run while the job still runs (max one instance), so an alert fired
        during a long flush waited for the next interval. The thread lives from the first alert
        to the stop (a thread per alert made a storm of alerts a storm of thread starts, each
        a wait of the firer for the new thread); woken once, it takes every key asked for
        until it begins, and a request while it writes wakes it again after."""
        if self._scheduler is None or not self.leading:
            return  # stopping or standing by: stop() flushes, a standby has nothing to store
        with self._soon_lock:
            self._soon_keys.update((rule, key) for key in keys)
            if self._soon_pending:
                return
            self._soon_pending = True
            thread = self._soon_thread
            if thread is None or not thread.is_alive():
                self._soon_stop = False
                thread = threading.Thread(target=self._soon_loop, name="linkserver-rules-flush", daemon=True)
                self._soon_thread = thread
                thread.start()
        self._soon_wake.set()

    def _soon_loop(self) -> None:
        wake = self._soon_wake
        while True:
            wake.wait()
            wake.clear()
            if self._soon_stop:
                return  # stop() writes every changed key itself
            self._flush_now()

    def _flush_now(self) -> None:
        with self._soon_lock:
            self._soon_pending = False  # from here on a new request starts a new write after this one
            keys, self._soon_keys = self._soon_keys, set()
        if self._store is None or not self._still_leading():
            return
        try:
            with self._flush_lock:  # rows read and written in one order with the interval flush
                changes: list[Change] = []
                for name, key in sorted(keys):
                    running = self._rules.get(name)
                    if running is not None:
                        with running.lock:
                            changes.append((name, key, _row(running, key)))
                self._store.save(changes)  # they stay dirty too: the interval flush writes them again
        except Exception:
            log.exception("could not store the state of the alert rules; the next flush tries again")

    # -- after a crash: replaying what the stored state missed -----------

    def _newest_id(self) -> int:
        """The newest event id in history (0 for none): where this start's watermark begins."""
        try:
            page = self.history.query(HistoryQuery(newest_first=True, limit=1))
        except Exception:
            log.exception(
                "alert rules: could not read the newest event; a crash before the first write replays nothing"
            )
            return 0
        return page.events[0].id if page.events else 0

    def _catch_up(self, running: _Running, watermark: int, seen: dict[str, int]) -> list[Firing]:
        """Drive ``running``'s stored state with the persistent events committed after
        ``watermark`` (a key whose row was written later skips the events up to that row's
        ``_seen``), as if it had seen them live. What that fires and history has (the
        rule's alerts after the watermark, matched by event and key in order) is only
        remembered as fired (its id kept for the clear); what history lacks is returned,
        to be fired now."""
        rule, state = running.rule, running.state
        matches = _combined(rule)
        test = matches.matches if matches is not None else None
        tree = self.engine.tree
        escalation = rule.kind is RuleKind.ESCALATION

        def wanted(event: Event) -> bool:
            if test is not None and not test(event):
                return False
            return not escalation or _needs_acknowledgement(tree, event)

        def skip(event: Event) -> bool:
            return event.id <= seen.get(state.key_for(event), 0)

        try:
            events = [e for e in self._events_after(rule.mask, (rule.event,), watermark) if wanted(e)]
            fired = catch_up(state, events, skip=skip, acknowledged=self._acknowledged)
            if not fired:
                self.replayed += len(events)
                running.seen = max(running.seen, events[-1].id if events else watermark, watermark)
                return []
            done: dict[tuple[str, str], list[int]] = {}
            for event in self._events_after(rule.alert, REPLAY_FIRED, watermark):
                if event.author == COMPONENT and event.record.get("rule") == rule.name:
                    done.setdefault((event.name, _fired_key(event)), []).append(event.id)
        except Exception:
            log.exception(
                "alert rules: rule %s could not replay history after event %d", rule.name, watermark
            )
            return []
        self.replayed += len(events)
        running.seen = max(running.seen, events[-1].id if events else watermark, watermark)
        late = []
        for firing in fired:
            ids = done.get((firing.event, firing.key))
            if ids:
                state.fired(firing, ids.pop(0))  # fired before the crash: not again
            else:
                late.append(firing)
        if events:
            log.info(
                "alert rules: rule %s replayed %d events after its stored state (%d firings, %d new)",
                rule.name,
                len(events),
                len(fired),
                len(late),
            )
        return late

    def _events_after(self, mask: str, names: Sequence[str], after: int) -> Iterator[Event]:
        cursor: str | None = encode_cursor(after)
        while cursor is not None:
            page = self.history.query(
                HistoryQuery(
                    masks=(mask,), names=tuple(names), newest_first=False, limit=10_000, cursor=cursor
                )
            )
            yield from page.events
            cursor = page.next_cursor

    # -- persistence -----------------------------------------------------

    def flush(self) -> None:
        """Store the keys that changed since the last flush (one transaction)."""
        if self._store is None or not self._still_leading():
            return
        with self._flush_lock:
            changes: list[Change] = []
            mark, newest = self._mark, self._mark
            seen: dict[str, int] = {}
            for running in self._rules.values():
                with running.lock:
                    for key in running.state.take_dirty():
                        changes.append((running.rule.name, key, _row(running, key)))
                    if running.seen > mark:
                        seen[running.rule.name] = running.seen
                        newest = max(newest, running.seen)
            if changes or seen or newest != mark or not self._marks_written:
                # Each rule's state holds every event up to its own newest; one that saw nothing
                # newer than ``mark`` holds all up to that: delivered everywhere by now.
                changes.append((MARKS, MARKS_KEY, {"mark": mark, "seen": seen}))
                try:
                    self._store.save(changes)
                except Exception:
                    self._restore_dirty(changes)
                    raise
                self._mark = newest
                self._marks_written = True

    def _restore_dirty(self, changes: list[Change]) -> None:
        """A failed write: the keys stay dirty for the next flush."""
        for name, key, _ in changes:
            running = self._rules.get(name) if name != MARKS else None
            if running is not None:
                with running.lock:
                    running.state._dirty.add(key)

    # -- reading -----------------------------------------------------------

    def get(self, name: str) -> Rule:
        return self._running(name).rule

    def _running(self, name: str) -> _Running:
        running = self._rules.get(name)
        if running is None:
            raise UnknownRule(name, list(self._rules))
        return running

    def status(self, name: str | None = None) -> list[dict[str, Any]]:
        """Each rule (or the one named): what it watches and what it holds now."""
        chosen = [self._running(name)] if name is not None else list(self._rules.values())
        now = self.clock()
        found = []
        for running in chosen:
            rule = running.rule
            with running.lock:
                state = running.state.status(now)
                fired = running.fired
                last = running.last_fired
            found.append(
                {
                    "name": rule.name,
                    "kind": str(rule.kind),
                    "enabled": running.enabled,
                    "mask": rule.mask,
                    "event": rule.event,
                    "alert": display(rule.alert),
                    "description": rule.describe(),
                    "fired": fired,
                    "last_fired": last.isoformat() if last is not None else None,
                    "state": state,
                }
            )
        return found

    # -- the dry run -------------------------------------------------------

    def test(
        self,
        name: str,
        *,
        since: timedelta | datetime,
        until: datetime | None = None,
        read: Callable[[HistoryQuery], Any] | None = None,
        limit: int = 1_000_000,
    ) -> dict[str, Any]:
        """What rule ``name`` would have fired over stored history from ``since`` (a time,
        or how long ago) to ``until`` (default now), without firing anything. ``read``
        reads one page of history (a user's permission-checked query); default: all.
        Only persistent events are in history, so only they are replayed."""
        rule = self.get(name)
        if rule.source == ALARMS:
            raise BadRequest(
                f"rule {name!r} escalates alarms, and the alarm list keeps no history to replay; "
                "a dry run replays events (an escalation with source: events)"
            )
        end = until or self.clock()
        start = end - since if isinstance(since, timedelta) else since
        events = list(self._history(rule, start, end, read or self.history.query, limit))
        acknowledged = ack_times(events) if rule.kind is RuleKind.ESCALATION else None
        matches = rule.filter.matches if rule.filter is not None else None
        if rule.kind is RuleKind.ESCALATION:
            tree = self.engine.tree
            base = matches
            matches = lambda e: _needs_acknowledgement(tree, e) and (base is None or base(e))  # noqa: E731
        fired = replay(rule, events, end, since=start, acknowledged=acknowledged, matches=matches)
        return {
            "rule": rule.name,
            "since": start.isoformat(),
            "until": end.isoformat(),
            "events": len(events),
            "fired": [firing.json() for firing in fired],
        }

    @staticmethod
    def _history(
        rule: Rule, start: datetime, end: datetime, read: Callable[[HistoryQuery], Any], limit: int
    ) -> Iterator[Event]:
        cursor: str | None = None
        seen = 0
        while True:
            page = read(
                HistoryQuery(
                    masks=(rule.mask,),
                    names=(rule.event,),
                    since=start,
                    until=end,
                    newest_first=False,
                    limit=10_000,
                    cursor=cursor,
                )
            )
            for event in page.events:
                yield event
                seen += 1
                if seen >= limit:
                    return
            cursor = page.next_cursor
            if cursor is None:
                return


def _row(running: _Running, key: str) -> dict[str, Any] | None:
    """``key``'s row with the rule's newest event id: a replay skips what the row holds."""
    row = running.state.dump(key)
    return {**row, SEEN: running.seen} if row is not None else None


def _fired_key(event: Event) -> str:
    """The rule key of an alert, clear or escalation event the rule host fired."""
    record = event.record
    if event.name == ESCALATED:
        return str(record.get("alert_id"))
    return str(record.get("key"))


def _bound(rule: Rule, engine: Engine) -> Rule:
    """``rule`` with its ``filter``, ``open`` and ``close`` fitted to the events it watches, as a
    subscription's filter is (core.filters.labels.bind_filter: value labels resolved, so
    ``data.status == "down"`` holds where down is stored as 2), for everything that tests them
    here: the subscription, the threshold's state, the dry run and the alarm list's query.
    ``linkserver check`` reported a filter that fits none of them at its line; a rule built in
    Python with one is a FilterError here."""
    definitions = engine.tree.definitions_under((rule.mask,), (rule.event,))
    if not definitions:
        return rule  # nothing defines the event (yet): no labels to resolve
    what = f"{rule.event!r} under {rule.mask!r}"
    bound = {}
    for key in ("filter", "open", "close"):
        value = getattr(rule, key)
        if value is not None:
            fitted = bind_filter(value, definitions, what)
            if fitted is not value:
                bound[key] = fitted
    return attrs.evolve(rule, **bound) if bound else rule


def _combined(rule: Rule) -> Filter | None:
    """The subscription's filter: the rule's, and for a threshold either of its two (their
    trees joined, not their texts parsed again: the trees have the labels resolved)."""
    if rule.kind is not RuleKind.THRESHOLD:
        return rule.filter
    assert rule.open is not None and rule.close is not None
    either_text = f"({rule.open.text}) or ({rule.close.text})"
    either = Or((rule.open.ast, rule.close.ast))
    if rule.filter is None:
        return Filter(either_text, either)
    return Filter(f"({rule.filter.text}) and ({either_text})", And((rule.filter.ast, either)))


def _alarm_event(alarm: Any) -> Event:
    """An alarm as an escalation state takes it: its id, context, name, level, first time."""
    return Event(alarm.id, alarm.context, alarm.name, alarm.level, alarm.first, None, None, None, ())


def _needs_acknowledgement(tree: Any, event: Event) -> bool:
    context = tree.find(event.context)
    definition = context.definitions.get(event.name) if context is not None else None
    return definition is not None and definition.requires_acknowledgement


def rules_of(config: Any) -> list[tuple[Rule, bool]]:
    """(rule, enabled) of a ServerConfig's ``rules:`` section."""
    return [(item.to_rule(), item.enabled) for item in config.sections.get("rules", ())]


__all__ = ["RuleHost", "UnknownRule", "rules_of"]
