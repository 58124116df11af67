"""The documents of the resource and job operations (docs/resources.md), declared once.

Kept apart from :mod:`linkserver.wire.shapes` (which they build on) so that module stays
one idea; /openapi.json takes them from :data:`linkserver.wire.routes.OPERATIONS` like the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

from linkserver.wire.shapes import ContextPath, Event, Mask, Name, Shape

StateName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_]+$", description="A state of a state machine")]


class ResourceQuery(Shape):
    """``GET /resources``: the resources any of the masks matches (none given: every one)."""

    mask: list[Mask] = []


class Resource(Shape):
    path: str
    machine: str
    state: str
    allowed: Annotated[list[str], Meta(description="The transitions out of the state, as text")]
    actions: Annotated[list[str], Meta(description="The actions that may be requested now")]


class ResourcesAnswer(Shape):
    resources: list[Resource]


class ResourceAnswer(Shape):
    resource: Resource


class TransitionRequest(Shape):
    """``POST /resources/{path}/transition``: exactly one of ``action`` and ``to``."""

    action: Name | None = None
    to: StateName | None = None
    cause: Annotated[str, Meta(max_length=500)] | None = None
    durable: bool = False


class TransitionAnswer(Shape):
    resource: Resource
    event: Event


# -- jobs ------------------------------------------------------------------------------

JobId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="A job id")]
JobType = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:-]{1,100}$", description="What the job does: VM.START")]
JobStatus = Literal["scheduled", "started", "completed", "failed"]
# An enum in the document too: JSON Schema counts 3.0 as an integer, the decoder does not.
Percent = Annotated[int, Meta(ge=0, le=100, extra_json_schema={"enum": list(range(101))})]
Seconds = Annotated[float, Meta(gt=0, le=31 * 86400, description="seconds")]


class JobQuery(Shape):
    """``GET /jobs``: current and recent jobs, newest first."""

    status: JobStatus | None = None
    resource: ContextPath | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100


class JobPath(Shape):
    id: JobId


class NewJob(Shape):
    """``POST /jobs``: schedule a job (``start``: and start it at once)."""

    type: JobType
    resource: ContextPath = ""
    id: JobId | None = None
    start: bool = False
    asynchronous: bool = True
    start_within: Seconds | None = None
    timeout: Seconds | None = None
    message: Annotated[str, Meta(max_length=500)] | None = None


class JobStep(Shape):
    """``POST /jobs/{id}/start|progress|complete|fail``."""

    progress: Percent | None = None
    message: Annotated[str, Meta(max_length=500)] | None = None
    result: Annotated[str, Meta(max_length=10_000)] | None = None


class Job(Shape):
    id: str
    type: str
    resource: str
    user: str | None
    status: str
    asynchronous: bool
    scheduled: datetime | None
    started: datetime | None
    finished: datetime | None
    duration: Annotated[float | None, Meta(description="seconds from start (or schedule) to the end or now")]
    progress: int | None
    message: str | None
    result: str | None
    hanging: Annotated[str | None, Meta(description="why the job was reported hanging, if it was")]


class JobAnswer(Shape):
    job: Job


class JobsAnswer(Shape):
    jobs: list[Job]
