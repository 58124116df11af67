"""The HTTP calls of the network API, written once (``calls_async.py``); ``calls_sync.py`` is
the same text with ``async`` and ``await`` taken out by ``tools/unasync.py``.

A client class supplies ``_call(method, path, body=None, params=None)``, which sends one
request and returns the decoded answer or raises the server's error; everything a call
does besides (building the request, reading the answer) is here, once. The paths are the
operations of :data:`linkserver.wire.routes.OPERATIONS` (``tests/client`` checks each).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Unpack

from linkserver.client.alarm_values import AlarmCriteria, Purged, alarm_params, alarm_url
from linkserver.client.transport import (
    BatchItem,
    HistoryCriteria,
    HistoryPage,
    batch_items,
    context_url,
    event_url,
    expect,
    fire_item,
    history_params,
    job_params,
    job_step_body,
    job_url,
    new_job_body,
    new_user_body,
    parse_event,
    parse_page,
    parse_results,
    password_body,
    resource_url,
    rule_url,
    token_url,
    transition_body,
    user_url,
)

if TYPE_CHECKING:
    from linkserver.core.errors import LinkServerError
    from linkserver.core.events import Event
    from linkserver.core.levels import Level


class AsyncCalls:
    """The calls of ``/api/v1`` on top of ``_call``."""

    async def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        raise NotImplementedError

    async def me(self) -> dict[str, Any]:
        """``{user, grants: {mask: level}, component}`` of the authenticated user."""
        return await self._call("GET", "/me")  # type: ignore[no-any-return]

    async def tree(self, path: str = "", depth: int | None = None) -> dict[str, Any]:
        """The visible tree below ``path``: ``{path, name, description, children: [...]}``."""
        params = {"path": path, **({"depth": str(depth)} if depth is not None else {})}
        return await self._call("GET", "/tree", params=params)  # type: ignore[no-any-return]

    async def context(self, path: str) -> dict[str, Any]:
        """``{path, description, children, events: [definition]}`` of one context."""
        return await self._call("GET", context_url(path))  # type: ignore[no-any-return]

    async def add_context(
        self,
        path: str,
        *,
        template: str | None = None,
        description: str | None = None,
        controller: str | None = None,
        adopt: bool = False,
    ) -> str:
        """Add a context (admin on its parent); returns its path. ``controller`` makes it a
        device that controller owns, ``adopt`` takes over an existing one no other controller
        owns (else DeviceOwned names the owner)."""
        body: dict[str, Any] = {"path": path}
        if template is not None:
            body["template"] = template
        if description is not None:
            body["description"] = description
        if controller is not None:
            body["controller"] = controller
        if adopt:
            body["adopt"] = True
        return str(expect(await self._call("POST", "/contexts", body), "path"))

    async def remove_context(self, path: str, *, controller: str | None = None) -> list[str]:
        """Remove the context and its subtree; returns the removed paths. A device that a
        controller owns is removed only by that ``controller`` (else DeviceOwned)."""
        params = {"controller": controller} if controller is not None else None
        return list(expect(await self._call("DELETE", context_url(path), params=params), "removed"))

    async def fire(
        self,
        context: str,
        event: str,
        data: Any = None,
        *,
        level: Level | str | int | None = None,
        durable: bool = False,
    ) -> Event:
        """Fire one event; with ``durable`` the answer waits until a persistent event is committed
        (HistoryUnavailable when history cannot confirm it in time: retry)."""
        body = fire_item(context, event, data, level)
        if durable:
            body["durable"] = True
        return parse_event(expect(await self._call("POST", "/fire", body), "event"))

    async def fire_batch(
        self, events: Iterable[BatchItem], durable: bool = False
    ) -> list[Event | LinkServerError]:
        """Fire several events in one request; each result is the Event or the error it got (not raised)."""
        body: dict[str, Any] = {"events": batch_items(events)}
        if durable:
            body["durable"] = True
        return parse_results(expect(await self._call("POST", "/fire/batch", body), "results"), "event")

    async def history(self, **query: Unpack[HistoryCriteria]) -> HistoryPage:
        """One page of history matching every criterion given (see :class:`HistoryCriteria`)."""
        return parse_page(await self._call("GET", "/history", params=history_params(**query)))

    async def iter_history(self, **query: Unpack[HistoryCriteria]) -> AsyncIterator[Event]:
        """Every matching event, fetching page after page (``limit`` is the page size)."""
        while True:
            page = await self.history(**query)
            for event in page.events:
                yield event
            if not page.next_cursor:
                return
            query["cursor"] = page.next_cursor

    async def alarms(self, **query: Unpack[AlarmCriteria]) -> dict[str, Any]:
        """One page of the alarm list: ``{alarms: [alarm], next_cursor}`` (see docs/alarms.md)."""
        return await self._call("GET", "/alarms", params=alarm_params(**query))  # type: ignore[no-any-return]

    async def iter_alarms(self, **query: Unpack[AlarmCriteria]) -> AsyncIterator[dict[str, Any]]:
        """Every matching alarm, page after page (``limit`` is the page size)."""
        while True:
            page = await self.alarms(**query)
            for alarm in expect(page, "alarms"):
                yield alarm
            if not page.get("next_cursor"):
                return
            query["cursor"] = page["next_cursor"]

    async def alarm(self, alarm_id: int) -> dict[str, Any]:
        """One alarm with its acknowledgements."""
        return expect(await self._call("GET", alarm_url(alarm_id)), "alarm")  # type: ignore[no-any-return]

    async def alarm_events(
        self, alarm_id: int, *, order: str | None = None, limit: int | None = 100, cursor: str | None = None
    ) -> HistoryPage:
        """One page of an alarm's stored events (those it folded and the one that cleared it),
        newest first unless ``order="oldest"``; only those the caller may receive."""
        params = alarm_params(order=order, limit=limit, cursor=cursor)
        return parse_page(await self._call("GET", alarm_url(alarm_id, "events"), params=params))

    async def iter_alarm_events(
        self, alarm_id: int, *, order: str | None = None, limit: int | None = 100
    ) -> AsyncIterator[Event]:
        """Every stored event of an alarm, page after page (``limit`` is the page size)."""
        cursor: str | None = None
        while True:
            page = await self.alarm_events(alarm_id, order=order, limit=limit, cursor=cursor)
            for event in page.events:
                yield event
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def acknowledge_alarm(self, alarm_id: int, text: str) -> dict[str, Any]:
        """Acknowledge an alarm (operator); returns it."""
        answer = await self._call("POST", alarm_url(alarm_id, "acknowledge"), {"text": text})
        return expect(answer, "alarm")  # type: ignore[no-any-return]

    async def unacknowledge_alarm(self, alarm_id: int) -> dict[str, Any]:
        """Remove an alarm's acknowledgements: it is open again (operator)."""
        return expect(await self._call("POST", alarm_url(alarm_id, "unacknowledge")), "alarm")  # type: ignore[no-any-return]

    async def clear_alarm(self, alarm_id: int) -> dict[str, Any]:
        """Clear an alarm by hand (operator)."""
        return expect(await self._call("POST", alarm_url(alarm_id, "clear")), "alarm")  # type: ignore[no-any-return]

    async def event(self, event_id: int) -> Event:
        """One stored event with its acknowledgements."""
        return parse_event(expect(await self._call("GET", event_url(event_id)), "event"))

    async def acknowledge(self, event_id: int, text: str) -> Event:
        """Acknowledge a stored event; returns it with every acknowledgement."""
        answer = await self._call("POST", event_url(event_id, "acknowledge"), {"text": text})
        return parse_event(expect(answer, "event"))

    async def delete(self, event_id: int) -> None:
        """Delete a stored event (manager)."""
        await self._call("DELETE", event_url(event_id))

    async def purge(self) -> Purged:
        """Delete expired history and the alarms cleared longer ago than ``keep_cleared`` now;
        returns how many of each went."""
        answer = await self._call("POST", "/purge")
        expect(answer, "removed")
        return Purged.from_answer(answer)

    # -- users (docs/protocol.md: admin on root, except oneself) ------------------

    async def users(self) -> list[dict[str, Any]]:
        """Every user: ``{name, grants, password, created, updated}``."""
        return list(expect(await self._call("GET", "/users"), "users"))

    async def user(self, name: str) -> dict[str, Any]:
        """One user: ``{name, grants, password, created, updated}``."""
        return dict(expect(await self._call("GET", user_url(name)), "user"))

    async def add_user(
        self, name: str, *, password: str | None = None, grants: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Add a user (without a password it can only log in once one is set)."""
        return dict(expect(await self._call("POST", "/users", new_user_body(name, password, grants)), "user"))

    async def set_password(self, name: str, password: str, *, current_password: str | None = None) -> None:
        """Set a user's password; one's own needs ``current_password``. Ends its other sessions."""
        await self._call("POST", user_url(name, "password"), password_body(password, current_password))

    async def grant(self, name: str, grants: Mapping[str, Any]) -> dict[str, Any]:
        """Add or change grants ``{mask: level}``; returns the user."""
        body = {"grants": {mask: str(level) for mask, level in grants.items()}}
        return dict(expect(await self._call("POST", user_url(name, "grants"), body), "user"))

    async def revoke(self, name: str, masks: Iterable[str]) -> dict[str, Any]:
        """Remove the grants of ``masks``; returns the user."""
        body = {"masks": list(masks)}
        return dict(expect(await self._call("POST", user_url(name, "revoke"), body), "user"))

    async def remove_user(self, name: str) -> None:
        """Remove a user and end its sessions."""
        await self._call("DELETE", user_url(name))

    # -- API tokens, for controllers and scripts (admin on root) -------------------------

    async def api_tokens(self) -> list[dict[str, Any]]:
        """Every API token: ``{name, grants, created, expires}`` (never the secret)."""
        return list(expect(await self._call("GET", "/tokens"), "tokens"))

    async def create_api_token(
        self, name: str, grants: Mapping[str, Any], *, lifetime: str | None = None
    ) -> str:
        """Create (or replace) the API token ``name``; returns ``NAME.SECRET``, shown this once.
        ``lifetime`` such as ``90d``; none: valid until revoked."""
        body: dict[str, Any] = {
            "name": name,
            "grants": {mask or "root": str(level) for mask, level in grants.items()},
        }
        if lifetime is not None:
            body["lifetime"] = lifetime
        return str(expect(await self._call("POST", "/tokens", body), "token"))

    async def revoke_api_token(self, name: str) -> None:
        """Revoke the API token ``name``: refused at once, its WebSockets closed on every node."""
        await self._call("DELETE", token_url(name))

    # -- resources and their state machines (docs/resources.md) ----------------------

    async def resources(self, mask: str = "**") -> list[dict[str, Any]]:
        """The resources ``mask`` matches: ``{path, machine, state, allowed, actions}`` each."""
        return list(expect(await self._call("GET", "/resources", params={"mask": mask}), "resources"))

    async def resource(self, path: str) -> dict[str, Any]:
        """One resource: ``{path, machine, state, allowed, actions}``."""
        return dict(expect(await self._call("GET", resource_url(path)), "resource"))

    async def transition(
        self,
        path: str,
        action: str | None = None,
        *,
        to: str | None = None,
        cause: str | None = None,
        durable: bool = False,
    ) -> dict[str, Any]:
        """Request a transition by ``action`` (or to state ``to``); returns ``{resource, event}``.
        InvalidTransition (409) names the current state and the allowed transitions."""
        body = transition_body(action, to, cause, durable)
        answer = await self._call("POST", resource_url(path, "transition"), body)
        return {"resource": dict(expect(answer, "resource")), "event": parse_event(expect(answer, "event"))}

    # -- alert rules (docs/rules.md) ---------------------------------------------------

    async def rules(self) -> list[dict[str, Any]]:
        """The alert rules the user may see: ``{name, kind, enabled, description, fired, state, ...}``."""
        return list(expect(await self._call("GET", "/rules"), "rules"))

    async def rule(self, name: str) -> dict[str, Any]:
        """One alert rule with its state; UnknownRule (404) for a name that is not configured."""
        return dict(expect(await self._call("GET", rule_url(name)), "rule"))

    async def test_rule(self, name: str, since: str = "1d", until: str | None = None) -> dict[str, Any]:
        """Dry run: what rule ``name`` would have fired over stored history from ``since`` (a
        duration before ``until``: 7d, 6h; or an RFC 3339 time) to ``until`` (RFC 3339, default
        now). Fires nothing."""
        params = {"since": since, **({"until": until} if until else {})}
        return dict(await self._call("GET", rule_url(name, "test"), params=params))

    # -- jobs (docs/resources.md, "Jobs") ----------------------------------------------

    async def jobs(
        self, *, status: str | None = None, resource: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Current and recent jobs, newest first: ``{id, type, resource, status, duration, ...}``."""
        params = job_params(status, resource, limit)
        return list(expect(await self._call("GET", "/jobs", params=params), "jobs"))

    async def job_status(self, job_id: str) -> dict[str, Any]:
        """One job: ``{id, type, resource, user, status, started, duration, result, hanging, ...}``."""
        return dict(expect(await self._call("GET", job_url(job_id)), "job"))

    async def schedule_job(
        self,
        job_type: str,
        resource: str = "",
        *,
        start: bool = False,
        asynchronous: bool = True,
        job_id: str | None = None,
        start_within: float | None = None,
        timeout: float | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Schedule a job on ``resource`` (``start``: start it too); returns the job.
        Fires jobScheduled (and jobStarted) in the resource's context."""
        body = new_job_body(job_type, resource, start, asynchronous, job_id, start_within, timeout, message)
        return dict(expect(await self._call("POST", "/jobs", body), "job"))

    async def job_step(
        self,
        job_id: str,
        step: str,
        *,
        progress: int | None = None,
        message: str | None = None,
        result: str | None = None,
    ) -> dict[str, Any]:
        """``step`` is start, progress, complete or fail; JobError (409) when it cannot follow now."""
        body = job_step_body(progress, message, result)
        return dict(expect(await self._call("POST", job_url(job_id, step), body), "job"))

    @asynccontextmanager
    async def job(
        self,
        job_type: str,
        resource: str = "",
        *,
        timeout: float | None = None,
        message: str | None = None,
    ) -> AsyncIterator[AsyncJob]:
        """Run a job in a ``with`` block: started on entry, completed when the block ends,
        failed (with the exception's text) when it raises; ``job.progress(percent)`` on the way."""
        job = AsyncJob(
            self, await self.schedule_job(job_type, resource, start=True, timeout=timeout, message=message)
        )
        try:
            yield job
        except BaseException as exc:
            if not job.finished:
                await self.job_step(job.id, "fail", result=f"{type(exc).__name__}: {exc}"[:10_000])
            raise
        if not job.finished:
            await self.job_step(job.id, "complete", result=job.result)


class AsyncJob:
    """A job run by :meth:`AsyncCalls.job`: ``id``, ``info`` (the job as last answered), and its steps."""

    def __init__(self, calls: AsyncCalls, info: dict[str, Any]) -> None:
        self.calls, self.info = calls, info
        self.id: str = info["id"]
        self.result: str | None = None
        self.finished = False

    async def progress(self, percent: int | None = None, message: str | None = None) -> None:
        self.info = await self.calls.job_step(self.id, "progress", progress=percent, message=message)

    async def complete(self, result: str | None = None) -> None:
        """End the job now (else the end of the ``with`` block does)."""
        self.info = await self.calls.job_step(self.id, "complete", result=result)
        self.finished = True

    async def fail(self, result: str) -> None:
        self.info = await self.calls.job_step(self.id, "fail", result=result)
        self.finished = True
