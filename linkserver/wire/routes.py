"""The HTTP operations of the network API: the one table the server routes by and
/openapi.json describes (docs/protocol.md).

Each :class:`Operation` names the shapes of its body, query and path
parameters and answer; the server decodes every request with them before its
handler runs, so a handler sees only documents that fit their declaration.
"""

from __future__ import annotations

import attrs

from linkserver.wire import alarm_shapes as a
from linkserver.wire import resource_shapes as r
from linkserver.wire import rule_shapes as ru
from linkserver.wire import shapes as s
from linkserver.wire import token_shapes as t

PREFIX = "/api/v1"

ERROR_TEXT = {
    400: "Malformed JSON, wrong types, unknown keys, an invalid filter, level or name",
    401: "Missing, unknown or expired token",
    403: "Forbidden by the user's grants",
    404: "Unknown (or invisible) context, definition or event",
    409: "Exists already, or a state transition not allowed from the current state",
    413: "Message, body or batch too large",
    422: "Data table invalid",
    429: "Too many failed logins or unknown tokens: wait Retry-After seconds",
    503: "History did not confirm the write in time (not confirmed: retry), or the server is stopping",
}


@attrs.frozen
class Operation:
    name: str  # the handler's name in linkserver.net.app.Api
    method: str
    path: str  # below PREFIX
    summary: str
    needs: str
    answer: type
    status: int = 200
    body: type | None = None
    query: type | None = None
    path_params: type | None = None
    errors: tuple[int, ...] = ()
    public: bool = False

    @property
    def url(self) -> str:
        return PREFIX + self.path


Op = Operation
OPERATIONS: tuple[Operation, ...] = (
    Op("login", "POST", "/login", "Log in; fires 'login' in users.NAME", "nothing", s.LoginAnswer,
      body=s.LoginRequest, errors=(400, 401, 429), public=True),
    Op("logout", "POST", "/logout", "End the session; fires 'logout'", "a session token", s.Empty),
    Op("me", "GET", "/me", "The current user and its grants", "any token", s.MeAnswer),
    Op("tree", "GET", "/tree", "The visible context tree", "observer somewhere below", s.TreeNode,
      query=s.TreeQuery, errors=(400, 404)),
    Op("context", "GET", "/contexts/{path}", "A context with its visible definitions and formats",
      "observer (or a grant below)", s.ContextAnswer, path_params=s.ContextPathParam, errors=(400, 404)),
    Op("add_context", "POST", "/contexts", "Add a context", "admin on the parent", s.PathAnswer, status=201,
      body=s.NewContext, errors=(400, 403, 404, 409)),
    Op("remove_context", "DELETE", "/contexts/{path}", "Remove a context and its subtree", "admin",
      s.RemovedPaths, path_params=s.ContextPathParam, query=s.RemoveContextQuery, errors=(400, 403, 404)),
    Op("fire", "POST", "/fire", "Fire one event", "the definition's fire_permissions", s.EventAnswer,
      body=s.FireRequest, errors=(400, 403, 404, 413, 422, 503)),
    Op("fire_batch", "POST", "/fire/batch", "Fire events in order; each answered with its event or its error",
      "each as /fire", s.BatchAnswer, body=s.FireBatchRequest, errors=(400, 413, 503)),
    Op("history", "GET", "/history", "Query history (only events the user may receive)",
      "receive permissions per event", s.HistoryAnswer, query=s.HistoryParams, errors=(400,)),
    Op("check_filter", "POST", "/filters/check", "Check a filter expression against the events it would see",
      "any token", s.FilterChecked, body=s.FilterCheck, errors=(400,)),
    Op("event", "GET", "/events/{id}", "One stored event with its acknowledgements", "receive permissions",
      s.EventAnswer, path_params=s.EventPath, errors=(400, 404)),
    Op("acknowledge", "POST", "/events/{id}/acknowledge", "Acknowledge a stored event", "operator",
      s.EventAnswer, body=s.Acknowledge, path_params=s.EventPath, errors=(400, 403, 404)),
    Op("delete", "DELETE", "/events/{id}", "Delete a stored event", "manager", s.Empty,
      path_params=s.EventPath, errors=(400, 403, 404)),
    Op("purge", "POST", "/purge", "Purge expired events and cleared alarms past keep_cleared now",
      "engineer on root", s.Purged,
      errors=(403,)),
    # Users managed at run time (linkserver.net.users_api).
    Op("users", "GET", "/users", "Every user", "admin on root", s.UsersAnswer, errors=(403,)),
    Op("add_user", "POST", "/users", "Add a user; fires 'userAdded' in users.NAME", "admin on root",
      s.UserAnswer, status=201, body=s.NewUser, errors=(400, 403, 409)),
    Op("user", "GET", "/users/{name}", "One user", "admin on root, or the user itself", s.UserAnswer,
      path_params=s.UserPath, errors=(400, 403, 404)),
    Op("remove_user", "DELETE", "/users/{name}", "Remove a user; fires 'userRemoved', ends its sessions",
      "admin on root (not oneself)", s.Empty, path_params=s.UserPath, errors=(400, 403, 404)),
    Op("set_password", "POST", "/users/{name}/password",
      "Set a password; fires 'passwordChanged', ends the user's other sessions",
      "admin on root; the user itself with current_password", s.Empty, body=s.PasswordChange,
      path_params=s.UserPath, errors=(400, 403, 404, 429)),
    Op("grant", "POST", "/users/{name}/grants",
      "Add or change grants; fires 'grantsChanged', closes the user's WebSockets (4403)", "admin on root",
      s.UserAnswer, body=s.GrantChange, path_params=s.UserPath, errors=(400, 403, 404)),
    Op("revoke", "POST", "/users/{name}/revoke",
      "Remove grants; fires 'grantsChanged', closes the user's WebSockets (4403)", "admin on root",
      s.UserAnswer, body=s.Revocation, path_params=s.UserPath, errors=(400, 403, 404)),
    # API tokens for controllers and scripts (linkserver.net.tokens_api), shared by every node.
    Op("api_tokens", "GET", "/tokens", "The API tokens: names, grants, expiry (never the secrets)",
      "admin on root", t.TokensAnswer, errors=(403,)),
    Op("add_api_token", "POST", "/tokens", "Create or replace an API token; the token is in this answer only",
      "admin on root", t.CreatedToken, status=201, body=t.NewToken, errors=(400, 403)),
    Op("remove_api_token", "DELETE", "/tokens/{name}",
      "Revoke an API token; its WebSockets close on every node within a second", "admin on root", s.Empty,
      path_params=t.TokenPath, errors=(400, 403, 404)),
    # Resources and their state machines (linkserver.net.resources_api).
    Op("resources", "GET", "/resources", "Resources (contexts with a state machine) and their states",
      "observer", r.ResourcesAnswer, query=r.ResourceQuery, errors=(400,)),
    Op("resource", "GET", "/resources/{path}", "One resource's state and allowed transitions", "observer",
      r.ResourceAnswer, path_params=s.ContextPathParam, errors=(400, 404)),
    Op("transition", "POST", "/resources/{path}/transition",
      "Request a transition (an action, or a target state); fires 'stateChanged'", "operator on the resource",
      r.TransitionAnswer, body=r.TransitionRequest, path_params=s.ContextPathParam,
      errors=(400, 403, 404, 409, 503)),
    # Jobs (linkserver.net.resources_api); each step fires its job event in the resource's context.
    Op("jobs", "GET", "/jobs", "Current and recent jobs, newest first", "observer on each job's resource",
      r.JobsAnswer, query=r.JobQuery, errors=(400,)),
    Op("job", "GET", "/jobs/{id}", "One job", "observer on its resource", r.JobAnswer, path_params=r.JobPath,
      errors=(400, 404)),
    Op("add_job", "POST", "/jobs", "Schedule a job (and start it); fires 'jobScheduled' ('jobStarted')",
      "the job events' fire_permissions", r.JobAnswer, status=201, body=r.NewJob,
      errors=(400, 403, 404, 409)),
    Op("start_job", "POST", "/jobs/{id}/start", "Start a scheduled job; fires 'jobStarted'",
      "the job events' fire_permissions", r.JobAnswer, body=r.JobStep, path_params=r.JobPath,
      errors=(400, 403, 404, 409)),
    Op("job_progress", "POST", "/jobs/{id}/progress", "Report progress; fires 'jobProgress'",
      "the job events' fire_permissions", r.JobAnswer, body=r.JobStep, path_params=r.JobPath,
      errors=(400, 403, 404, 409)),
    Op("complete_job", "POST", "/jobs/{id}/complete", "Complete a started job; fires 'jobCompleted'",
      "the job events' fire_permissions", r.JobAnswer, body=r.JobStep, path_params=r.JobPath,
      errors=(400, 403, 404, 409)),
    Op("fail_job", "POST", "/jobs/{id}/fail", "Fail a started job; fires 'jobFailed'",
      "the job events' fire_permissions", r.JobAnswer, body=r.JobStep, path_params=r.JobPath,
      errors=(400, 403, 404, 409)),
    # Alert rules (linkserver.net.rules_api, docs/rules.md).
    Op("rules", "GET", "/rules", "The alert rules and their state", "observer on each rule's alert context",
      ru.RulesAnswer),
    Op("rule", "GET", "/rules/{name}", "One alert rule and its state", "observer on its alert context",
      ru.RuleAnswer, path_params=ru.RulePath, errors=(400, 404)),
    Op("test_rule", "GET", "/rules/{name}/test",
      "Dry run: what the rule would have fired over stored history; fires nothing",
      "observer on its alert context; the events replayed are those the user may receive",
      ru.RuleTestAnswer, query=ru.RuleTestQuery, path_params=ru.RulePath, errors=(400, 404)),
    # The alarm list (linkserver.net.alarms_api, docs/alarms.md).
    Op("alarms", "GET", "/alarms", "List alarms (only those of events the user may receive)",
      "receive permissions per alarm", a.AlarmsAnswer, query=a.AlarmParams, errors=(400,)),
    Op("alarm", "GET", "/alarms/{id}", "One alarm with its acknowledgements", "receive permissions",
      a.AlarmAnswer, path_params=a.AlarmPath, errors=(400, 404)),
    Op("alarm_events", "GET", "/alarms/{id}/events", "The stored events of an alarm, paged by cursor",
      "receive permissions (per event, as history)", a.AlarmEventsAnswer, path_params=a.AlarmPath,
      query=a.AlarmEventsParams, errors=(400, 404)),
    Op("acknowledge_alarm", "POST", "/alarms/{id}/acknowledge",
      "Acknowledge an alarm; fires 'alarmChanged'", "operator", a.AlarmAnswer, body=a.AlarmText,
      path_params=a.AlarmPath, errors=(400, 403, 404)),
    Op("unacknowledge_alarm", "POST", "/alarms/{id}/unacknowledge",
      "Remove an alarm's acknowledgements (open again); fires 'alarmChanged'", "operator", a.AlarmAnswer,
      path_params=a.AlarmPath, errors=(400, 403, 404)),
    Op("clear_alarm", "POST", "/alarms/{id}/clear", "Clear an alarm by hand; fires 'alarmChanged'",
      "operator", a.AlarmAnswer, path_params=a.AlarmPath, errors=(400, 403, 404)),
)  # fmt: skip

BY_NAME = {op.name: op for op in OPERATIONS}
