"""Which operations of the network API are changes, and what each one is about (the audit trail).

:data:`AUDITED` names every operation of :data:`linkserver.wire.routes.OPERATIONS`
that changes something; :class:`~linkserver.net.app.Api` wraps each of their
handlers with :func:`audited`, so each call, whether it succeeds or is refused
once its request decoded, becomes exactly one ``action`` event in the actor's
``users.NAME`` context (:class:`linkserver.server.audit.AuditTrail`). A new
operation that changes something adds one line here: its ``what`` and a
function saying where (and on what) it acts.

``where`` is only ever a context the actor may observe: a refused attempt on an
invisible event or context records only what the actor named itself
(``target``: the event id, the path as written).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from linkserver.core.errors import LinkServerError
from linkserver.core.levels import Permission
from linkserver.core.paths import parse_path
from linkserver.server.audit import Action

if TYPE_CHECKING:
    from linkserver.net.app import Api, Call

Before = Callable[["Api", "Call"], Action]
After = Callable[[Action, "Call", Any], Action]


@attrs.frozen
class Audited:
    """``before`` says what the call is about (run before its handler, so it also describes a
    refused call); ``after`` may add what the answer tells (run on success only)."""

    before: Before
    after: After | None = None


# -- where an operation acts ----------------------------------------------------------------


def _path(text: str) -> str | None:
    try:
        return parse_path(text)
    except LinkServerError:
        return None


def event_arg(what: str) -> Before:
    """An operation on the event ``{id}``: where is its context, if the actor may observe it."""

    def before(api: Api, call: Call) -> Action:
        event_id = call.args.id
        try:
            event = api.access.get(event_id, call.principal)
        except LinkServerError:
            return Action(what=what, target=f"event {event_id}")
        return Action(what=what, where=event.context, target=f"event {event_id}", detail=event.name)

    return before


def alarm_arg(what: str) -> Before:
    """An operation on the alarm ``{id}``: where is its context, if the actor may see the alarm."""

    def before(api: Api, call: Call) -> Action:
        alarm_id = call.args.id
        try:
            alarm = api.gateway.server.alarms.get(alarm_id, call.principal)
        except LinkServerError:
            return Action(what=what, target=f"alarm {alarm_id}")
        return Action(what=what, where=alarm.context, target=f"alarm {alarm_id}", detail=alarm.key)

    return before


def path_arg(what: str) -> Before:
    """An operation on the context ``{path}``."""
    return lambda api, call: Action(what=what, where=_path(call.args.path), target=call.args.path)


def body_path(what: str) -> Before:
    """An operation on the context ``path`` of the request body."""
    return lambda api, call: Action(what=what, where=_path(call.body.path), target=call.body.path)


def user_arg(what: str) -> Before:
    """An operation on the user ``{name}`` (its context ``users.NAME``)."""
    return lambda api, call: Action(what=what, where=f"users.{call.args.name}", target=call.args.name)


def root(what: str) -> Before:
    return lambda api, call: Action(what=what, where="")


def _detail(text: Callable[[Call, Any], str | None]) -> After:
    return lambda action, call, answer: attrs.evolve(action, detail=text(call, answer))


def _grants(grants: dict[str, str]) -> str:
    return ", ".join(f"{mask or 'root'}: {level}" for mask, level in sorted(grants.items())) or "no grants"


def _asked(call: Call) -> str:
    return f"action {call.body.action}" if call.body.action else f"to {call.body.to}"


def _transition(call: Call, answer: Any) -> str:
    record = answer["event"]["data"][0]
    return f"{record['old']} -> {record['new']} ({_asked(call)})"


def _before_transition(api: Api, call: Call) -> Action:
    return attrs.evolve(path_arg("transition")(api, call), detail=_asked(call))


def _add_user(api: Api, call: Call) -> Action:
    name = call.body.name
    return Action(what="add_user", where=f"users.{name}", target=name, detail=_grants(call.body.grants))


def _observed(api: Api, call: Call, path: str | None) -> str | None:
    """``path`` if the actor may observe it, else None."""
    if path is not None and call.principal.may(path, Permission.OBSERVER):
        return path
    return None


AUDITED: dict[str, Audited] = {
    "acknowledge": Audited(
        event_arg("acknowledge"), _detail(lambda call, answer: call.body.text if call.body else None)
    ),
    "delete": Audited(event_arg("delete")),
    "purge": Audited(
        root("purge"),
        _detail(
            lambda call, answer: (
                f"{answer['alarms_removed']} cleared alarms and {answer['removed']} expired events removed"
            )
        ),
    ),
    "add_context": Audited(
        body_path("add_context"),
        _detail(lambda call, answer: f"template {call.body.template}" if call.body.template else None),
    ),
    "remove_context": Audited(
        path_arg("remove_context"),
        _detail(lambda call, answer: f"{len(answer['removed'])} contexts removed"),
    ),
    "add_user": Audited(_add_user),
    "remove_user": Audited(user_arg("remove_user")),
    "set_password": Audited(user_arg("set_password")),
    "grant": Audited(user_arg("grant"), _detail(lambda call, answer: _grants(call.body.grants))),
    "revoke": Audited(
        user_arg("revoke"), _detail(lambda call, answer: ", ".join(m or "root" for m in call.body.masks))
    ),
    "add_api_token": Audited(
        lambda api, call: Action(what="add_api_token", where="", target=call.body.name),
        _detail(lambda call, answer: _grants(call.body.grants)),
    ),
    "remove_api_token": Audited(
        lambda api, call: Action(what="remove_api_token", where="", target=call.args.name)
    ),
    "transition": Audited(_before_transition, _detail(_transition)),
    "acknowledge_alarm": Audited(
        alarm_arg("acknowledge_alarm"), _detail(lambda call, answer: call.body.text)
    ),
    "unacknowledge_alarm": Audited(alarm_arg("unacknowledge_alarm")),
    "clear_alarm": Audited(alarm_arg("clear_alarm")),
}
"""Operation name -> how it is audited. Every operation that changes something is here
(tests/net/test_audit.py checks the table against the operations)."""


def audited(api: Api, name: str, handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
    """``handler`` recording one action event per call, if operation ``name`` is audited."""
    entry = AUDITED.get(name)
    if entry is None:
        return handler
    trail = api.gateway.server.audit

    def run(call: Call) -> Any:
        try:
            action = entry.before(api, call)
        except Exception:  # describing the call must never stop it
            action = Action(what=name)
        action = attrs.evolve(action, where=_observed(api, call, action.where))
        try:
            answer = handler(call)
        except Exception as exc:
            trail.record(call.principal, action, exc, address=call.address)
            raise
        if entry.after is not None:
            try:
                action = entry.after(action, call, answer)
            except Exception:
                pass
        trail.record(call.principal, action, address=call.address)
        return answer

    return run
