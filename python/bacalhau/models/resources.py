"""Resources: the strings users write (`500m`, `512Mb`, `1Gi`) and the numbers nodes compare.

`ResourcesConfig` is the task's `Resources` object as sent on the wire (strings);
`Resources` is its parsed form (CPU cores, bytes, GPU count) used for bidding, capacity
tracking and ranking. CPU follows Kubernetes quantities; memory and disk follow go-humanize
(`Mb` = 10^6, `MiB` = 2^20, case-insensitive), as Bacalhau does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bacalhau.errors import ValidationError
from bacalhau.models.codec import (
    get_float,
    get_int,
    get_list,
    get_str,
    lower_keys,
)

_BYTE_UNITS: dict[str, int] = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "ki": 2**10, "kib": 2**10,
    "m": 10**6, "mb": 10**6, "mi": 2**20, "mib": 2**20,
    "g": 10**9, "gb": 10**9, "gi": 2**30, "gib": 2**30,
    "t": 10**12, "tb": 10**12, "ti": 2**40, "tib": 2**40,
    "p": 10**15, "pb": 10**15, "pi": 2**50, "pib": 2**50,
    "e": 10**18, "eb": 10**18, "ei": 2**60, "eib": 2**60,
}
_BYTES_RE = re.compile(r"^([0-9]*\.?[0-9]+)\s*([a-z]*)$")
_CPU_RE = re.compile(r"^([0-9]*\.?[0-9]+)(m?)$")


def parse_cpu(text: str, field_name: str = "CPU") -> float:
    """Cores from a Kubernetes-style quantity: `500m` -> 0.5, `2` -> 2.0, `0.25` -> 0.25."""
    value = text.strip().lower().replace(" ", "")
    if value == "":
        return 0.0
    match = _CPU_RE.match(value)
    if not match:
        raise ValidationError(
            f'{field_name}: invalid CPU value "{text}": use cores like "2" or "0.5", '
            'or millicores like "500m"'
        )
    number = float(match.group(1))
    return number / 1000.0 if match.group(2) else number


def parse_bytes(text: str, field_name: str = "Memory") -> int:
    """Bytes from a go-humanize size: `512Mb` -> 512000000, `1Gi` -> 1073741824."""
    value = text.strip().lower()
    if value == "":
        return 0
    match = _BYTES_RE.match(value)
    if not match or match.group(2) not in _BYTE_UNITS:
        raise ValidationError(
            f'{field_name}: invalid size "{text}": use a number with an optional unit such as '
            '"512Mb", "1GB", "2GiB" or "1024"'
        )
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2)])


def parse_gpu(text: str, field_name: str = "GPU") -> int:
    value = text.strip()
    if value == "":
        return 0
    if not value.isdigit():
        raise ValidationError(f'{field_name}: invalid GPU count "{text}": use a whole number')
    return int(value)


def format_bytes(n: int) -> str:
    """Human size with decimal units, as Bacalhau prints capacity."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


@dataclass(slots=True)
class GPU:
    index: int = 0
    name: str = ""
    vendor: str = ""
    memory: int = 0
    pci_address: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "Index": self.index, "Name": self.name, "Vendor": self.vendor,
            "Memory": self.memory, "PCIAddress": self.pci_address,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "GPU") -> GPU:
        d = lower_keys(data, where)
        return cls(
            index=get_int(d, "Index", where), name=get_str(d, "Name", where),
            vendor=get_str(d, "Vendor", where), memory=get_int(d, "Memory", where),
            pci_address=get_str(d, "PCIAddress", where),
        )

    def clone(self) -> GPU:
        return GPU(self.index, self.name, self.vendor, self.memory, self.pci_address)


@dataclass(slots=True)
class Resources:
    """Parsed resources: CPU in cores, memory and disk in bytes, GPU count."""

    cpu: float = 0.0
    memory: int = 0
    disk: int = 0
    gpu: int = 0
    gpus: list[GPU] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.cpu:
            out["CPU"] = self.cpu
        if self.memory:
            out["Memory"] = self.memory
        if self.disk:
            out["Disk"] = self.disk
        if self.gpu:
            out["GPU"] = self.gpu
        if self.gpus:
            out["GPUs"] = [g.to_dict() for g in self.gpus]
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "Resources") -> Resources:
        d = lower_keys(data, where)
        return cls(
            cpu=get_float(d, "CPU", where), memory=get_int(d, "Memory", where),
            disk=get_int(d, "Disk", where), gpu=get_int(d, "GPU", where),
            gpus=[GPU.from_dict(g, f"{where}.GPUs") for g in get_list(d, "GPUs", where)],
        )

    def clone(self) -> Resources:
        return Resources(self.cpu, self.memory, self.disk, self.gpu,
                         [g.clone() for g in self.gpus])

    def as_tuple(self) -> tuple[float, int, int, int]:
        return (self.cpu, self.memory, self.disk, self.gpu)

    def add(self, other: Resources) -> Resources:
        return Resources(
            self.cpu + other.cpu, self.memory + other.memory,
            self.disk + other.disk, self.gpu + other.gpu,
        )

    def sub(self, other: Resources) -> Resources:
        """Difference, floored at zero in every dimension."""
        return Resources(
            max(0.0, round(self.cpu - other.cpu, 9)), max(0, self.memory - other.memory),
            max(0, self.disk - other.disk), max(0, self.gpu - other.gpu),
        )

    def less_or_equal(self, other: Resources) -> bool:
        return (
            self.cpu <= other.cpu + 1e-9 and self.memory <= other.memory
            and self.disk <= other.disk and self.gpu <= other.gpu
        )

    def max_per_dim(self, other: Resources) -> Resources:
        return Resources(
            max(self.cpu, other.cpu), max(self.memory, other.memory),
            max(self.disk, other.disk), max(self.gpu, other.gpu),
        )

    def is_zero(self) -> bool:
        return self.cpu == 0 and self.memory == 0 and self.disk == 0 and self.gpu == 0

    def __str__(self) -> str:
        parts = [f"CPU: {self.cpu:g}", f"Memory: {format_bytes(self.memory)}",
                 f"Disk: {format_bytes(self.disk)}"]
        if self.gpu:
            parts.append(f"GPU: {self.gpu}")
        return "{" + ", ".join(parts) + "}"


@dataclass(slots=True)
class ResourcesConfig:
    """The task's `Resources` as written by users: strings, parsed by `to_resources`."""

    cpu: str = ""
    memory: str = ""
    disk: str = ""
    gpu: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.cpu:
            out["CPU"] = self.cpu
        if self.memory:
            out["Memory"] = self.memory
        if self.disk:
            out["Disk"] = self.disk
        if self.gpu:
            out["GPU"] = self.gpu
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "Resources") -> ResourcesConfig:
        d = lower_keys(data, where)
        values = {}
        for key in ("CPU", "Memory", "Disk", "GPU"):
            raw = d.get(key.lower())
            if raw is None:
                values[key] = ""
            elif isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                raise ValidationError(f"{where}.{key}: expected a string such as \"500m\"")
            else:
                values[key] = str(raw) if not isinstance(raw, float) else f"{raw:g}"
        return cls(values["CPU"], values["Memory"], values["Disk"], values["GPU"])

    def normalize(self) -> None:
        self.cpu = self.cpu.lower().replace(" ", "")
        self.memory = self.memory.lower().replace(" ", "")
        self.disk = self.disk.lower().replace(" ", "")
        self.gpu = self.gpu.lower().replace(" ", "")

    def is_empty(self) -> bool:
        return not (self.cpu or self.memory or self.disk or self.gpu)

    def clone(self) -> ResourcesConfig:
        return ResourcesConfig(self.cpu, self.memory, self.disk, self.gpu)

    def to_resources(self, where: str = "Resources") -> Resources:
        return Resources(
            cpu=parse_cpu(self.cpu, f"{where}.CPU"),
            memory=parse_bytes(self.memory, f"{where}.Memory"),
            disk=parse_bytes(self.disk, f"{where}.Disk"),
            gpu=parse_gpu(self.gpu, f"{where}.GPU"),
        )
