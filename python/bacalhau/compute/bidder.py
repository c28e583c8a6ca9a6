"""The bidder (reference §5.4): may this node ever run this execution?

Two kinds of checks, all evaluated so that a rejection lists every reason:
- semantic: the engine, the publisher and every input type are installed here and accept
  the spec (`Executor.check`, and an engine's optional async `check_task(task)` for checks that
  need I/O, `Publisher.check`, `StorageProvider.check` — the local storage
  provider enforces `Compute.AllowListedLocalPaths`), `env:` references are allow-listed,
  networked jobs are refused when `JobAdmissionControl.RejectNetworkedJobs` is set;
- resources: the job's resources (unset CPU/Memory default to 0.1 / 100 MiB; Disk at least the
  inputs' total size where a provider can tell) must fit MaxJobRequirements.

The bidder answers "could it ever fit", not "does it fit now": waiting for free capacity is
the executor buffer's job. Reasons read "this node does not …".

`decides_at_once(execution)`: every check this bid needs is local (an engine whose
`check_task` needs no I/O, input types whose size is known from the spec, both marked with
`BID_CHECKS_ARE_LOCAL`), so `bid` completes without waiting and the AskForBid handler can
store the execution already decided (issue 15: one write where there were two).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bacalhau.compute.capacity import job_usage
from bacalhau.config import Config
from bacalhau.errors import InputMismatch, ValidationError
from bacalhau.executors.base import Executor
from bacalhau.models import Execution, Resources, SpecConfig

if TYPE_CHECKING:
    from bacalhau.publishers.base import Publisher
    from bacalhau.storage.base import StorageProvider

log = logging.getLogger(__name__)

SIZE_PROBE_TIMEOUT = 10.0
ENV_PREFIX = "env:"


@dataclass(slots=True)
class BidDecision:
    accepted: bool
    reasons: list[str] = field(default_factory=list)
    usage: Resources = field(default_factory=Resources)

    @property
    def message(self) -> str:
        return "rejected bid: " + "; ".join(self.reasons) if self.reasons else ""


def read_write_param(source: SpecConfig) -> bool:
    value = source.param("ReadWrite", False)
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def env_allowed(name: str, allow_list: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in allow_list)


class Bidder:
    """Decides bids from the installed providers and the node's MaxJobRequirements."""

    def __init__(
        self,
        config: Config,
        executors: Mapping[str, Executor],
        storages: Mapping[str, StorageProvider],
        publishers: Mapping[str, Publisher],
        max_job: Resources,
    ) -> None:
        """Provider maps are keyed by lower-cased type name and hold installed ones only."""
        self._config = config
        self._executors = executors
        self._storages = storages
        self._publishers = publishers
        self.max_job = max_job

    def decides_at_once(self, execution: Execution) -> bool:
        """True when `bid(execution)` needs no I/O (module doc); a provider that is not
        installed counts as local (the bid is rejected without asking it)."""
        job = execution.job
        if job is None or not job.tasks:
            return True
        task = job.task
        executor = self._executors.get(task.engine.type.lower())
        if executor is not None and getattr(executor, "check_task", None) is not None \
                and not getattr(executor, "BID_CHECKS_ARE_LOCAL", False):
            return False
        for src in task.input_sources:
            provider = self._storages.get(src.source.type.lower())
            if provider is not None and not getattr(provider, "BID_CHECKS_ARE_LOCAL", False):
                return False
        return True

    async def bid(self, execution: Execution) -> BidDecision:
        """Accept or reject; a provider's unexpected exception propagates (execution fails)."""
        job = execution.job
        if job is None or not job.tasks:
            return BidDecision(False, ["this node does not accept an execution without a job "
                                       "task"])
        task = job.task
        reasons = self._semantic(task)
        reasons += await self._executor_task_checks(task)
        usage, resource_reasons = await self._resources(task)
        reasons += resource_reasons
        return BidDecision(not reasons, reasons, usage)

    def _semantic(self, task: Any) -> list[str]:
        reasons: list[str] = []
        engine = task.engine
        executor = self._executors.get(engine.type.lower())
        if executor is None:
            reasons.append(f'this node does not support the "{engine.type}" engine '
                           f"(installed: {_names(self._executors)})")
        else:
            reasons += executor.check(engine)
        if not task.publisher.is_empty():
            publisher = self._publishers.get(task.publisher.type.lower())
            if publisher is None:
                reasons.append(f'this node does not support the "{task.publisher.type}" '
                               f"publisher (installed: {_names(self._publishers)})")
            else:
                reasons += publisher.check(task.publisher)
        for index, src in enumerate(task.input_sources):
            provider = self._storages.get(src.source.type.lower())
            if provider is None:
                reasons.append(f'this node does not support "{src.source.type}" input sources '
                               f"(InputSources[{index}]; installed: {_names(self._storages)})")
            else:
                reasons += provider.check(src.source, read_write=read_write_param(src.source))
        allow = [str(p) for p in self._config.get("Compute.Env.AllowList", []) or []]
        for name, value in sorted(task.env.items()):
            if isinstance(value, str) and value.startswith(ENV_PREFIX):
                host_var = value[len(ENV_PREFIX):]
                if not env_allowed(host_var, allow):
                    reasons.append(f"this node does not forward host variable {host_var} "
                                   f"(Env.{name}): not in Compute.Env.AllowList")
        network = (task.network.type or "Default").lower()
        if (self._config.get("JobAdmissionControl.RejectNetworkedJobs", False)
                and network not in ("default", "none")):
            reasons.append(
                f"this node does not accept networked jobs (Network {task.network.type})")
        return reasons

    async def _executor_task_checks(self, task: Any) -> list[str]:
        """The engine's optional `async check_task(task) -> list[str]`: bid-time checks that
        need I/O or more of the task than the engine spec (the docker engine: is the image
        here or pullable, is the network mode supported, may Network HTTP reach its domains
        from here; the wasm engine: Network HTTP is refused)."""
        executor = self._executors.get(task.engine.type.lower())
        check_task = getattr(executor, "check_task", None)
        if check_task is None:
            return []
        return list(await check_task(task))

    async def _resources(self, task: Any) -> tuple[Resources, list[str]]:
        try:
            requested = task.resources.to_resources("Tasks[0].Resources")
        except ValidationError as exc:
            return Resources(), [f"this node does not understand the resources: {exc}"]
        usage = job_usage(requested)
        try:
            input_size = await self._input_size(task)
        except InputMismatch as exc:
            return usage, [f"this node does not accept the input: {exc}"]
        if input_size > usage.disk:
            usage.disk = input_size
        if not usage.less_or_equal(self.max_job):
            return usage, [f"this node does not have enough resources: requested {usage}, "
                           f"available {self.max_job}"]
        return usage, []

    async def _input_size(self, task: Any) -> int:
        async def one(src: Any) -> int:
            provider = self._storages.get(src.source.type.lower())
            if provider is None:
                return 0
            try:
                async with asyncio.timeout(SIZE_PROBE_TIMEOUT):  # no extra task, unlike wait_for
                    size = await provider.size(src.source)
            except InputMismatch:
                raise
            except Exception as exc:  # an unknown size does not stop a bid
                log.debug("size probe of %s input failed: %s", src.source.type, exc)
                return 0
            return int(size or 0)

        sources = task.input_sources
        if len(sources) == 1:
            return await one(sources[0])
        sizes = await asyncio.gather(*(one(s) for s in sources))
        return sum(sizes)


def _names(providers: Mapping[str, Any]) -> str:
    return ", ".join(sorted(providers)) or "none"
