"""Task: what runs (engine), with which inputs, resources, network and timeouts, and where its
results go (publisher, result paths)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bacalhau.httpgateway.domains import domain_problem
from bacalhau.models.codec import copy_str_map, get_list, get_str, get_str_map, lower_keys
from bacalhau.models.resources import ResourcesConfig
from bacalhau.models.spec import (
    InputSource,
    NetworkConfig,
    ResultPath,
    SpecConfig,
    TimeoutConfig,
)

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(slots=True)
class Task:
    name: str = ""
    engine: SpecConfig = field(default_factory=SpecConfig)
    publisher: SpecConfig = field(default_factory=SpecConfig)
    env: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    input_sources: list[InputSource] = field(default_factory=list)
    result_paths: list[ResultPath] = field(default_factory=list)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Name": self.name,
            "Engine": self.engine.to_dict(),
            "Publisher": self.publisher.to_dict(),
        }
        if self.env:
            out["Env"] = self.env
        if self.meta:
            out["Meta"] = self.meta
        if self.input_sources:
            out["InputSources"] = [i.to_dict() for i in self.input_sources]
        if self.result_paths:
            out["ResultPaths"] = [r.to_dict() for r in self.result_paths]
        if not self.resources.is_empty():
            out["Resources"] = self.resources.to_dict()
        if not self.network.is_empty():
            out["Network"] = self.network.to_dict()
        if not self.timeouts.is_empty():
            out["Timeouts"] = self.timeouts.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "Task") -> Task:
        d = lower_keys(data, where)
        return cls(
            name=get_str(d, "Name", where),
            engine=SpecConfig.from_dict(d.get("engine"), f"{where}.Engine"),
            publisher=SpecConfig.from_dict(d.get("publisher"), f"{where}.Publisher"),
            env=get_str_map(d, "Env", where),
            meta=get_str_map(d, "Meta", where),
            input_sources=[
                InputSource.from_dict(x, f"{where}.InputSources[{i}]")
                for i, x in enumerate(get_list(d, "InputSources", where))
            ],
            result_paths=[
                ResultPath.from_dict(x, f"{where}.ResultPaths[{i}]")
                for i, x in enumerate(get_list(d, "ResultPaths", where))
            ],
            resources=ResourcesConfig.from_dict(
                d.get("resources", d.get("resourcesconfig")), f"{where}.Resources"),
            network=NetworkConfig.from_dict(d.get("network"), f"{where}.Network"),
            timeouts=TimeoutConfig.from_dict(d.get("timeouts"), f"{where}.Timeouts"),
        )

    def clone(self) -> Task:
        """A deep copy, much cheaper than `copy.deepcopy`."""
        return Task(
            self.name, self.engine.clone(), self.publisher.clone(), copy_str_map(self.env),
            copy_str_map(self.meta), [i.clone() for i in self.input_sources],
            [r.clone() for r in self.result_paths], self.resources.clone(),
            self.network.clone(), self.timeouts.clone(),
        )

    def normalize(self) -> None:
        self.name = self.name.strip()
        self.engine.normalize()
        self.publisher.normalize()
        for src in self.input_sources:
            src.source.normalize()
        self.resources.normalize()

    def problems(self, where: str) -> list[str]:
        """Every rule of reference §2.1 this task breaks, each naming its field."""
        out: list[str] = []
        if not self.name:
            out.append(f"{where}.Name: must not be blank")
        if not self.engine.type:
            out.append(f"{where}.Engine.Type: must not be blank (use docker or wasm)")
        for name, value in self.env.items():
            if not _ENV_NAME.match(name):
                out.append(
                    f'{where}.Env: name "{name}" is invalid: use upper-case letters, digits '
                    "and _, starting with a letter"
                )
            elif name.startswith("BACALHAU_"):
                out.append(f'{where}.Env: name "{name}" is reserved (BACALHAU_ prefix)')
            if value == "":
                out.append(f'{where}.Env: value of "{name}" must not be empty')
        targets: set[str] = set()
        aliases: set[str] = set()
        for i, src in enumerate(self.input_sources):
            w = f"{where}.InputSources[{i}]"
            if not src.source.type:
                out.append(f"{w}.Source.Type: must not be blank")
            if not src.target:
                out.append(f"{w}.Target: must not be blank")
            elif not src.target.startswith("/"):
                out.append(f'{w}.Target: "{src.target}" must be an absolute path')
            elif src.target in targets:
                out.append(f'{w}.Target: "{src.target}" is used by another input')
            targets.add(src.target)
            if src.alias:
                if src.alias in aliases:
                    out.append(f'{w}.Alias: "{src.alias}" is used by another input')
                aliases.add(src.alias)
        names: set[str] = set()
        paths: set[str] = set()
        for i, rp in enumerate(self.result_paths):
            w = f"{where}.ResultPaths[{i}]"
            if not rp.name:
                out.append(f"{w}.Name: must not be blank")
            elif rp.name in names:
                out.append(f'{w}.Name: "{rp.name}" is used by another result path')
            elif "/" in rp.name or rp.name in (".", "..", "stdout", "stderr", "exitCode"):
                out.append(f'{w}.Name: "{rp.name}" cannot be used as a result folder name')
            names.add(rp.name)
            if not rp.path.startswith("/"):
                out.append(f'{w}.Path: "{rp.path}" must be an absolute path such as /outputs')
            elif rp.path in paths:
                out.append(f'{w}.Path: "{rp.path}" is used by another result path')
            paths.add(rp.path)
        if self.result_paths and self.publisher.is_empty():
            out.append(f"{where}.Publisher: result paths need a publisher (e.g. local)")
        try:
            self.resources.to_resources(f"{where}.Resources")
        except Exception as exc:  # ValidationError with the field's name
            out.append(str(exc))
        if self.network.domains and self.network.type != "HTTP":
            out.append(f"{where}.Network.Domains: domains are only allowed with network type HTTP")
        for i, domain in enumerate(self.network.domains):
            if problem := domain_problem(domain):
                out.append(f"{where}.Network.Domains[{i}]: {problem}")
        t = self.timeouts
        for label, value in (("ExecutionTimeout", t.execution_timeout),
                             ("QueueTimeout", t.queue_timeout),
                             ("TotalTimeout", t.total_timeout)):
            if value < 0:
                out.append(f"{where}.Timeouts.{label}: must be >= 0")
        if t.total_timeout > 0 and t.execution_timeout + t.queue_timeout > t.total_timeout:
            out.append(
                f"{where}.Timeouts: ExecutionTimeout ({t.execution_timeout}s) + QueueTimeout "
                f"({t.queue_timeout}s) must not exceed TotalTimeout ({t.total_timeout}s)"
            )
        return out
