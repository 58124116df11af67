"""The ``/resources`` and ``/jobs`` operations: states, transitions and jobs (docs/resources.md).

Shapes in :mod:`linkserver.wire.resource_shapes`, routes in
:data:`linkserver.wire.routes.OPERATIONS`; the work is
:class:`~linkserver.server.resources.Resources`'. A resource the caller may not
see answers like a missing one (ContextNotFound, 404).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from linkserver.core.errors import HistoryUnavailable
from linkserver.core.jobs import Job, JobNotFound, Step
from linkserver.core.levels import Permission
from linkserver.core.paths import display
from linkserver.core.statemachines import NotAResource
from linkserver.core.tree import Context
from linkserver.server.jobs import JobTracker, job_json
from linkserver.server.resources import Resources
from linkserver.wire import resource_shapes as shapes

if TYPE_CHECKING:
    from linkserver.net.app import Api, Call


def resource_json(context: Context, described: dict[str, Any]) -> dict[str, Any]:
    return {"path": context.path or "root", **described}


OBSERVER = Permission.OBSERVER


class ResourceRoutes:
    """The handlers of ``/resources`` and ``/jobs``; they run in worker threads like every operation."""

    def __init__(self, api: Api, resources: Resources, jobs: JobTracker) -> None:
        self.api, self.states, self.tracker = api, resources, jobs
        self.gateway = api.gateway

    def _described(self, call: Call, path: str) -> tuple[Context, dict[str, Any]]:
        context = self.gateway.context(call.principal, path)
        described = self.states.describe(context)
        if described is None:
            self.states.resource(context.path)  # raises NotAResource with its message
            raise NotAResource(display(context.path))
        return context, described

    def resources(self, call: Call) -> dict[str, Any]:
        query: shapes.ResourceQuery = call.query
        found: dict[str, Any] = {}
        for mask in query.mask or ["**"]:
            for context, described in self.states.list(mask, call.principal):
                found[context.path] = resource_json(context, described)
        return {"resources": [found[path] for path in sorted(found)]}

    def resource(self, call: Call) -> dict[str, Any]:
        return {"resource": resource_json(*self._described(call, call.args.path))}

    def transition(self, call: Call) -> dict[str, Any]:
        body: shapes.TransitionRequest = call.body
        context, _ = self._described(call, call.args.path)
        try:
            event = self.states.transition(
                context.path,
                action=body.action,
                to=body.to,
                by=call.principal,
                cause=body.cause,
                durable=body.durable,
                timeout=self.gateway.durable_timeout if body.durable else None,
            )
        except TimeoutError as exc:  # its message names the resource and the time waited
            raise HistoryUnavailable(
                f"{exc}: the change may or may not have been made; look at the resource again "
                "once the database answers"
            ) from None
        described = self.states.describe(context)
        assert described is not None
        return {"resource": resource_json(context, described), "event": event.marshal()}

    # -- jobs --------------------------------------------------------------------

    def _job(self, call: Call, job_id: str) -> Job:
        job = self.tracker.get(job_id)
        if not call.principal.may(job.resource, OBSERVER):
            raise JobNotFound(job_id)  # a job the caller may not see answers like a missing one
        return job

    def _answer(self, job: Job) -> dict[str, Any]:
        return {"job": job_json(job, self.tracker.clock())}

    def jobs(self, call: Call) -> dict[str, Any]:
        query: shapes.JobQuery = call.query
        found = self.tracker.list(status=query.status, resource=query.resource, limit=query.limit)
        now = self.tracker.clock()
        visible = [job for job in found if call.principal.may(job.resource, OBSERVER)]
        return {"jobs": [job_json(job, now) for job in visible]}

    def job(self, call: Call) -> dict[str, Any]:
        return self._answer(self._job(call, call.args.id))

    def add_job(self, call: Call) -> dict[str, Any]:
        body: shapes.NewJob = call.body
        self.gateway.context(call.principal, body.resource or "root")  # an invisible one is missing
        job = self.tracker.schedule(
            body.type,
            body.resource,
            by=call.principal,
            job_id=body.id,
            start=body.start,
            asynchronous=body.asynchronous,
            start_within=timedelta(seconds=body.start_within) if body.start_within else None,
            timeout=timedelta(seconds=body.timeout) if body.timeout else None,
            message=body.message,
        )
        return self._answer(job)

    def _step(self, call: Call, what: Step) -> dict[str, Any]:
        body: shapes.JobStep = call.body
        self._job(call, call.args.id)
        job = self.tracker.advance(
            call.args.id,
            what,
            by=call.principal,
            progress=body.progress,
            message=body.message,
            result=body.result,
        )
        return self._answer(job)

    def start_job(self, call: Call) -> dict[str, Any]:
        return self._step(call, Step.START)

    def job_progress(self, call: Call) -> dict[str, Any]:
        return self._step(call, Step.PROGRESS)

    def complete_job(self, call: Call) -> dict[str, Any]:
        return self._step(call, Step.COMPLETE)

    def fail_job(self, call: Call) -> dict[str, Any]:
        return self._step(call, Step.FAIL)
