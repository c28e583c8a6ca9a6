"""The small building blocks of a task: SpecConfig, inputs, result paths, network, timeouts,
and label constraints, each with Bacalhau's exact JSON names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bacalhau.errors import ValidationError
from bacalhau.models.codec import (
    copy_json,
    get_bool,
    get_dict,
    get_int,
    get_list,
    get_str,
    get_str_list,
    lower_keys,
)


@dataclass(slots=True)
class SpecConfig:
    """`{"Type": str, "Params": map}`: an engine, input source, publisher or result."""

    type: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Type": self.type}
        if self.params:
            out["Params"] = self.params
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "SpecConfig") -> SpecConfig:
        d = lower_keys(data, where)
        return cls(type=get_str(d, "Type", where), params=get_dict(d, "Params", where))

    def clone(self) -> SpecConfig:
        """A deep copy (params included)."""
        return SpecConfig(self.type, copy_json(self.params))

    def param(self, name: str, default: Any = None) -> Any:
        """A param looked up case-insensitively (clients send `bucket` or `Bucket`)."""
        if name in self.params:
            return self.params[name]
        lowered = name.lower()
        for key, value in self.params.items():
            if key.lower() == lowered:
                return value
        return default

    def is_empty(self) -> bool:
        return self.type == ""

    def normalize(self) -> None:
        """Lower-case the type, keeping Bacalhau's camelCase spellings of known types."""
        lowered = self.type.strip().lower()
        self.type = _CANONICAL_TYPES.get(lowered, lowered)


_CANONICAL_TYPES = {
    "urldownload": "urlDownload",
    "localdirectory": "localDirectory",
    "s3presigned": "s3PreSigned",
}


@dataclass(slots=True)
class InputSource:
    source: SpecConfig = field(default_factory=SpecConfig)
    alias: str = ""
    target: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"Source": self.source.to_dict(), "Alias": self.alias, "Target": self.target}

    @classmethod
    def from_dict(cls, data: Any, where: str = "InputSource") -> InputSource:
        d = lower_keys(data, where)
        return cls(
            source=SpecConfig.from_dict(d.get("source"), f"{where}.Source"),
            alias=get_str(d, "Alias", where),
            target=get_str(d, "Target", where),
        )

    def clone(self) -> InputSource:
        return InputSource(self.source.clone(), self.alias, self.target)


@dataclass(slots=True)
class ResultPath:
    name: str = ""
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"Name": self.name, "Path": self.path}

    @classmethod
    def from_dict(cls, data: Any, where: str = "ResultPath") -> ResultPath:
        d = lower_keys(data, where)
        return cls(name=get_str(d, "Name", where), path=get_str(d, "Path", where))

    def clone(self) -> ResultPath:
        return ResultPath(self.name, self.path)


NETWORK_TYPES = ("Default", "None", "Host", "Full", "HTTP", "Bridge")


@dataclass(slots=True)
class PortMapping:
    name: str = ""
    static: int = 0
    target: int = 0
    host_network: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Name": self.name}
        if self.static:
            out["Static"] = self.static
        if self.target:
            out["Target"] = self.target
        if self.host_network:
            out["HostNetwork"] = self.host_network
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "Port") -> PortMapping:
        d = lower_keys(data, where)
        return cls(
            name=get_str(d, "Name", where), static=get_int(d, "Static", where),
            target=get_int(d, "Target", where), host_network=get_str(d, "HostNetwork", where),
        )

    def clone(self) -> PortMapping:
        return PortMapping(self.name, self.static, self.target, self.host_network)


@dataclass(slots=True)
class NetworkConfig:
    type: str = ""
    domains: list[str] = field(default_factory=list)
    ports: list[PortMapping] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Type": self.type or "Default"}
        if self.domains:
            out["Domains"] = self.domains
        if self.ports:
            out["Ports"] = [p.to_dict() for p in self.ports]
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "Network") -> NetworkConfig:
        d = lower_keys(data, where)
        raw_type = d.get("type", "")
        if isinstance(raw_type, int) and not isinstance(raw_type, bool):
            # very old clients sent the Go enum number
            raw_type = {0: "None", 1: "Full", 2: "HTTP", 3: "Default", 4: "Host",
                        5: "Bridge"}.get(raw_type, str(raw_type))
        if not isinstance(raw_type, str):
            raise ValidationError(f"{where}.Type: expected a string such as \"None\"")
        canonical = ""
        if raw_type:
            for name in NETWORK_TYPES:
                if name.lower() == raw_type.lower():
                    canonical = name
                    break
            else:
                raise ValidationError(
                    f'{where}.Type: unknown network type "{raw_type}": use one of '
                    + ", ".join(NETWORK_TYPES)
                )
        return cls(
            type=canonical,
            domains=get_str_list(d, "Domains", where),
            ports=[PortMapping.from_dict(p, f"{where}.Ports[{i}]")
                   for i, p in enumerate(get_list(d, "Ports", where))],
        )

    def is_empty(self) -> bool:
        return not self.type and not self.domains and not self.ports

    def clone(self) -> NetworkConfig:
        return NetworkConfig(self.type, copy_json(self.domains),
                             [p.clone() for p in self.ports])


@dataclass(slots=True)
class TimeoutConfig:
    """Seconds; 0 means no limit."""

    execution_timeout: int = 0
    queue_timeout: int = 0
    total_timeout: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ExecutionTimeout": self.execution_timeout,
            "QueueTimeout": self.queue_timeout,
            "TotalTimeout": self.total_timeout,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "Timeouts") -> TimeoutConfig:
        d = lower_keys(data, where)
        return cls(
            execution_timeout=get_int(d, "ExecutionTimeout", where),
            queue_timeout=get_int(d, "QueueTimeout", where),
            total_timeout=get_int(d, "TotalTimeout", where),
        )

    def is_empty(self) -> bool:
        return not (self.execution_timeout or self.queue_timeout or self.total_timeout)

    def clone(self) -> TimeoutConfig:
        return TimeoutConfig(self.execution_timeout, self.queue_timeout, self.total_timeout)


SELECTOR_OPERATORS = ("in", "notin", "exists", "!", "=", "==", "!=", "gt", "lt")


@dataclass(slots=True)
class LabelSelectorRequirement:
    """One constraint: `{"Key", "Operator", "Values"}` with Kubernetes selector operators."""

    key: str = ""
    operator: str = ""
    values: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Key": self.key, "Operator": self.operator}
        if self.values:
            out["Values"] = self.values
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "Constraint") -> LabelSelectorRequirement:
        d = lower_keys(data, where)
        return cls(
            key=get_str(d, "Key", where), operator=get_str(d, "Operator", where),
            values=get_str_list(d, "Values", where),
        )

    def clone(self) -> LabelSelectorRequirement:
        return LabelSelectorRequirement(self.key, self.operator, copy_json(self.values))

    def problems(self, where: str) -> list[str]:
        out: list[str] = []
        if not self.key:
            out.append(f"{where}.Key: must not be empty")
        op = self.operator
        if op not in SELECTOR_OPERATORS:
            out.append(
                f'{where}.Operator: unknown operator "{op}": use one of '
                + ", ".join(SELECTOR_OPERATORS)
            )
            return out
        if op in ("in", "notin") and not self.values:
            out.append(f"{where}.Values: operator {op} needs at least one value")
        elif op in ("exists", "!") and self.values:
            out.append(f"{where}.Values: operator {op} takes no values")
        elif op in ("=", "==", "!=", "gt", "lt") and len(self.values) != 1:
            out.append(f"{where}.Values: operator {op} needs exactly one value")
        if op in ("gt", "lt") and len(self.values) == 1:
            try:
                int(self.values[0])
            except ValueError:
                out.append(f"{where}.Values: operator {op} needs an integer value")
        return out


def parse_selector(text: str) -> list[LabelSelectorRequirement]:
    """Parse a Kubernetes-style selector string (`a=b,c!=d,e in (x,y),!f,g`)."""
    out: list[LabelSelectorRequirement] = []
    parts: list[str] = []
    depth, current = 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    for raw in parts:
        item = raw.strip()
        if not item:
            continue
        lowered = item.lower()
        for word, op in ((" notin ", "notin"), (" in ", "in")):
            if word in lowered:
                idx = lowered.index(word)
                key = item[:idx].strip()
                values = item[idx + len(word):].strip().strip("()")
                out.append(LabelSelectorRequirement(
                    key, op, [v.strip() for v in values.split(",") if v.strip()]))
                break
        else:
            if item.startswith("!"):
                out.append(LabelSelectorRequirement(item[1:].strip(), "!", []))
            elif "!=" in item:
                k, v = item.split("!=", 1)
                out.append(LabelSelectorRequirement(k.strip(), "!=", [v.strip()]))
            elif "==" in item:
                k, v = item.split("==", 1)
                out.append(LabelSelectorRequirement(k.strip(), "==", [v.strip()]))
            elif "=" in item:
                k, v = item.split("=", 1)
                out.append(LabelSelectorRequirement(k.strip(), "=", [v.strip()]))
            elif ">" in item:
                k, v = item.split(">", 1)
                out.append(LabelSelectorRequirement(k.strip(), "gt", [v.strip()]))
            elif "<" in item:
                k, v = item.split("<", 1)
                out.append(LabelSelectorRequirement(k.strip(), "lt", [v.strip()]))
            else:
                out.append(LabelSelectorRequirement(item, "exists", []))
    return out


def matches_selector(labels: dict[str, str], reqs: list[LabelSelectorRequirement]) -> bool:
    """Python-side selector match (used for job list `labels=` filters; ranking is in Rust)."""
    for req in reqs:
        present = req.key in labels
        value = labels.get(req.key, "")
        op = req.operator
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
        if op in ("=", "==", "in") and (not present or value not in req.values):
            return False
        if op in ("!=", "notin") and present and value in req.values:
            return False
        if op in ("gt", "lt"):
            try:
                left, right = int(value), int(req.values[0])
            except (ValueError, IndexError):
                return False
            if (op == "gt" and not left > right) or (op == "lt" and not left < right):
                return False
    return True


def get_bool_param(spec: SpecConfig, name: str, default: bool = False) -> bool:
    value = spec.param(name)
    if value is None:
        return default
    return get_bool({"v": value}, "v", f"Params.{name}")


def parse_label_selectors(labels: Iterable[str]) -> list[LabelSelectorRequirement]:
    """Parse several selector strings (blank ones skipped); a bad one raises ValidationError
    naming its problems."""
    reqs: list[LabelSelectorRequirement] = []
    for text in labels:
        if not text or not text.strip():
            continue
        parsed = parse_selector(text)
        problems = [p for i, r in enumerate(parsed) for p in r.problems(f"labels[{i}]")]
        if problems:
            raise ValidationError(f'invalid label selector "{text}": ' + "; ".join(problems))
        reqs.extend(parsed)
    return reqs
