"""Job: the unit users submit. Holds the v1 job model, its Count rule, normalization and the
validation rules of reference §2.1, each problem reported with the field it concerns."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from os import PathLike
from typing import Any

from bacalhau.errors import ValidationError
from bacalhau.models.codec import (
    copy_str_map,
    get_dict,
    get_int,
    get_list,
    get_str,
    get_str_map,
    lower_keys,
)
from bacalhau.models.spec import LabelSelectorRequirement
from bacalhau.models.task import Task

RESERVED_META_PREFIX = "bacalhau.org/"


class JobStateType(StrEnum):
    UNDEFINED = "Undefined"
    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"

    def is_terminal(self) -> bool:
        return self in (JobStateType.COMPLETED, JobStateType.FAILED, JobStateType.STOPPED)


class JobType(StrEnum):
    BATCH = "batch"
    OPS = "ops"
    DAEMON = "daemon"
    SERVICE = "service"


@dataclass(slots=True)
class JobState:
    state_type: str = JobStateType.UNDEFINED.value
    message: str = ""
    details: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"StateType": self.state_type}
        if self.message:
            out["Message"] = self.message
        if self.details:
            out["Details"] = self.details
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "State") -> JobState:
        d = lower_keys(data, where)
        state = d.get("statetype", JobStateType.UNDEFINED.value)
        if isinstance(state, int) and not isinstance(state, bool):
            names = ["Undefined", "Pending", "Running", "Completed", "Failed", "Stopped", "Queued"]
            state = names[state] if 0 <= state < len(names) else "Undefined"
        return cls(
            state_type=str(state),
            message=get_str(d, "Message", where),
            details={str(k): str(v) for k, v in get_dict(d, "Details", where).items()},
        )

    def clone(self) -> JobState:
        return JobState(self.state_type, self.message, copy_str_map(self.details))

    @property
    def type(self) -> JobStateType:
        try:
            return JobStateType(self.state_type)
        except ValueError:
            return JobStateType.UNDEFINED


@dataclass(slots=True)
class Job:
    id: str = ""
    name: str = ""
    namespace: str = "default"
    type: str = ""
    priority: int = 0
    count: int = 1
    constraints: list[LabelSelectorRequirement] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    state: JobState = field(default_factory=JobState)
    version: int = 1
    revision: int = 1
    create_time: int = 0
    modify_time: int = 0

    @property
    def task(self) -> Task:
        return self.tasks[0]

    @classmethod
    def wasm(cls, module: str | PathLike[str], *args: str, **options: Any) -> Job:
        """A WASM job, as `bacalhau wasm run` builds it: `module` a local .wasm file (sent
        inline), a URI (ipfs://, s3://, https://) or a path under an input's target; `args`
        its arguments. Options (keywords): entry_point, env, import_modules, inputs (`-i`
        strings or InputSource), outputs (`name:/path`), publisher (local, ipfs, noop,
        s3://bucket/key or a SpecConfig), cpu, memory, disk, gpu, network, domains, timeout,
        queue_timeout, name, namespace, job_type, count, priority, labels, constraints."""
        from bacalhau.sdk.builders import wasm_job

        return wasm_job(module, *args, **options)

    @classmethod
    def docker(cls, image: str, *args: str, **options: Any) -> Job:
        """A Docker job, as `bacalhau docker run` builds it: `image` run with `args`. Options
        as `Job.wasm`, with entrypoint (list) and workdir instead of entry_point and
        import_modules."""
        from bacalhau.sdk.builders import docker_job

        return docker_job(image, *args, **options)

    @property
    def state_type(self) -> JobStateType:
        return self.state.type

    def is_long_running(self) -> bool:
        return self.type in (JobType.DAEMON, JobType.SERVICE)

    def is_terminal(self) -> bool:
        return self.state.type.is_terminal()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Name": self.name,
            "Namespace": self.namespace,
            "Type": self.type,
            "Priority": self.priority,
            "Count": self.count,
            "Constraints": [c.to_dict() for c in self.constraints],
            "Meta": self.meta,
            "Labels": self.labels,
            "Tasks": [t.to_dict() for t in self.tasks],
            "State": self.state.to_dict(),
            "Version": self.version,
            "Revision": self.revision,
            "CreateTime": self.create_time,
            "ModifyTime": self.modify_time,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "Job") -> Job:
        d = lower_keys(data, where)
        job_type = get_str(d, "Type", where)
        count_default = 1 if job_type.lower() in ("batch", "service", "") else 0
        return cls(
            id=get_str(d, "ID", where),
            name=get_str(d, "Name", where),
            namespace=get_str(d, "Namespace", where, "default"),
            type=job_type,
            priority=get_int(d, "Priority", where),
            count=get_int(d, "Count", where, default=count_default),
            constraints=[
                LabelSelectorRequirement.from_dict(c, f"{where}.Constraints[{i}]")
                for i, c in enumerate(get_list(d, "Constraints", where))
            ],
            meta=get_str_map(d, "Meta", where),
            labels=get_str_map(d, "Labels", where),
            tasks=[Task.from_dict(t, f"{where}.Tasks[{i}]")
                   for i, t in enumerate(get_list(d, "Tasks", where))],
            state=JobState.from_dict(d.get("state"), f"{where}.State"),
            version=get_int(d, "Version", where, default=1),
            revision=get_int(d, "Revision", where, default=1),
            create_time=get_int(d, "CreateTime", where),
            modify_time=get_int(d, "ModifyTime", where),
        )

    def copy(self) -> Job:
        """A deep copy (hand-written: `copy.deepcopy` costs ten times more)."""
        return Job(
            self.id, self.name, self.namespace, self.type, self.priority, self.count,
            [c.clone() for c in self.constraints], copy_str_map(self.meta),
            copy_str_map(self.labels), [t.clone() for t in self.tasks], self.state.clone(),
            self.version, self.revision, self.create_time, self.modify_time,
        )

    clone = copy

    def normalize(self) -> None:
        """Fill defaults and canonical spellings (reference §2.1, §2.2)."""
        self.type = self.type.strip().lower()
        self.namespace = self.namespace.strip() or "default"
        self.name = self.name.strip()
        if not self.name:
            self.name = self.id
        if self.type in (JobType.DAEMON, JobType.OPS) and self.count in (0, 1):
            self.count = 0
        for task in self.tasks:
            task.normalize()

    def strip_reserved_meta(self) -> list[str]:
        """Drop `bacalhau.org/` meta keys users may not set; returns warnings."""
        dropped = [k for k in self.meta if k.startswith(RESERVED_META_PREFIX)]
        for key in dropped:
            del self.meta[key]
        return [f'Meta key "{k}" is reserved and was removed' for k in dropped]

    def problems(self) -> list[str]:
        out: list[str] = []
        if not self.type:
            out.append("Type: missing job type (use batch, ops, daemon or service)")
        elif self.type not in {t.value for t in JobType}:
            out.append(f'Type: unknown job type "{self.type}" (use batch, ops, daemon or service)')
        if self.count < 0:
            out.append(f"Count: must be >= 0, got {self.count}")
        if self.type in (JobType.DAEMON, JobType.OPS) and self.count > 1:
            out.append(f"Count: {self.type} jobs run on every matching node; Count must be 0")
        if not self.namespace:
            out.append("Namespace: must not be blank")
        for i, c in enumerate(self.constraints):
            out.extend(c.problems(f"Constraints[{i}]"))
        if not self.tasks:
            out.append("Tasks: a job needs one task")
        for i, task in enumerate(self.tasks[:1]):
            out.extend(task.problems(f"Tasks[{i}]"))
        return out

    def validate(self) -> None:
        """Raise ValidationError listing every problem, or return quietly."""
        problems = self.problems()
        if problems:
            raise ValidationError(
                "invalid job: " + "; ".join(problems),
                details={"problems": "\n".join(problems)},
            )
