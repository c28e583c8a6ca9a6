"""Capacity of a compute node: what the host has (probes), what the node offers
(`Compute.AllocatedCapacity`), and what running executions hold right now (tracker).

MaxCapacity = MaxJobRequirements = allocated capacity (reference §6). The tracker is the only
thing that decides whether an execution may start; the bidder only asks "could it ever fit".

GPUs (`bacalhau.executors.gpu`): the probe counts the host's GPUs and lists them
(`Resources.gpus`); an allocated GPU count below the total offers the first ones. The tracker
hands each starting execution specific GPUs from the free ones (lowest index first) and takes
them back when it ends, so two executions never share a GPU (`gpus_of`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from bacalhau.config import Config
from bacalhau.errors import ConfigError, ValidationError
from bacalhau.executors.gpu import host_gpus
from bacalhau.models import GPU, Resources
from bacalhau.models.resources import parse_bytes, parse_cpu, parse_gpu

# Limits the compute applies to dimensions a job leaves unset (reference §11, hidden defaults).
DEFAULT_JOB_CPU = 0.1
DEFAULT_JOB_MEMORY = 100 * 2**20


def probe_memory(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Total RAM in bytes from `/proc/meminfo` (0 when it cannot be read)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                parts = line.split()
                return int(parts[1]) * 1024  # the kernel reports kB (KiB)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def probe_totals(data_dir: Path, gpus: list[GPU] | None = None) -> Resources:
    """What this host has: CPU count, total RAM, disk size of the file system of `data_dir`,
    GPUs (`gpus`, else those detected on this host)."""
    target = data_dir
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        disk = shutil.disk_usage(target).total
    except OSError:
        disk = 0
    if gpus is None:
        gpus = host_gpus().gpus
    return Resources(cpu=float(os.cpu_count() or 1), memory=probe_memory(), disk=disk,
                     gpu=len(gpus), gpus=[g.clone() for g in gpus])


def _allocated_value(raw: Any, total: float, parse: Any, key: str) -> float:
    text = str(raw).strip() if raw is not None else ""
    if text == "":
        return total
    try:
        if text.endswith("%"):
            return total * float(text[:-1]) / 100.0
        return parse(text, key)
    except (ValueError, ValidationError) as exc:
        raise ConfigError(
            f'{key}: invalid capacity "{raw}": use a percentage such as "80%" or an absolute '
            'value such as "2" (CPU), "4Gb" (Memory, Disk) or "1" (GPU)'
        ) from exc


def allocated_capacity(config: Config, totals: Resources) -> Resources:
    """Apply `Compute.AllocatedCapacity.{CPU,Memory,Disk,GPU}` (percent or absolute) to totals."""
    prefix = "Compute.AllocatedCapacity."
    cpu = _allocated_value(config.get(prefix + "CPU"), totals.cpu, parse_cpu, prefix + "CPU")
    memory = _allocated_value(
        config.get(prefix + "Memory"), totals.memory, parse_bytes, prefix + "Memory")
    disk = _allocated_value(config.get(prefix + "Disk"), totals.disk, parse_bytes, prefix + "Disk")
    gpu = int(_allocated_value(config.get(prefix + "GPU"), totals.gpu, parse_gpu,
                               prefix + "GPU"))
    gpus = [g.clone() for g in totals.gpus[:gpu]]
    return Resources(cpu=round(cpu, 3), memory=int(memory), disk=int(disk), gpu=gpu, gpus=gpus)


def job_usage(requested: Resources) -> Resources:
    """The resources an execution is charged: unset CPU/Memory get the compute defaults."""
    return Resources(
        cpu=requested.cpu or DEFAULT_JOB_CPU,
        memory=requested.memory or DEFAULT_JOB_MEMORY,
        disk=requested.disk,
        gpu=requested.gpu,
    )


class CapacityTracker:
    """Resources held by running executions, bounded by the node's max capacity."""

    def __init__(self, maximum: Resources) -> None:
        self.maximum = maximum
        self._held: dict[str, Resources] = {}
        self._used = Resources()
        self._gpus_held: dict[str, list[GPU]] = {}

    @property
    def used(self) -> Resources:
        return self._used

    def available(self) -> Resources:
        available = self.maximum.sub(self._used)
        available.gpus = self.available_gpus()
        return available

    def can_ever_fit(self, usage: Resources) -> bool:
        return usage.less_or_equal(self.maximum)

    def try_allocate(self, execution_id: str, usage: Resources) -> bool:
        """Hold `usage` for `execution_id` if it fits next to what is running now."""
        if execution_id in self._held:
            return True
        if not self._used.add(usage).less_or_equal(self.maximum):
            return False
        if usage.gpu and self.maximum.gpus:
            taken = {g.index for held in self._gpus_held.values() for g in held}
            free = [g for g in self.maximum.gpus if g.index not in taken]
            if len(free) < usage.gpu:
                return False
            self._gpus_held[execution_id] = [g.clone() for g in free[:usage.gpu]]
        self._held[execution_id] = usage
        self._used = self._used.add(usage)
        return True

    def gpus_of(self, execution_id: str) -> list[GPU]:
        """The specific GPUs held by a running execution (empty without GPUs)."""
        return [g.clone() for g in self._gpus_held.get(execution_id, ())]

    def available_gpus(self) -> list[GPU]:
        taken = {g.index for held in self._gpus_held.values() for g in held}
        return [g.clone() for g in self.maximum.gpus if g.index not in taken]

    def release(self, execution_id: str) -> None:
        usage = self._held.pop(execution_id, None)
        self._gpus_held.pop(execution_id, None)
        if usage is not None:
            self._used = self._used.sub(usage)

    def __len__(self) -> int:
        return len(self._held)
