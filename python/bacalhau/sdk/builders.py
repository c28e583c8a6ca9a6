"""`Job.wasm(...)` and `Job.docker(...)`: the jobs of `bacalhau wasm run` / `docker run`, built
by the CLI's own builders (`bacalhau.cli.spec`) from keyword arguments instead of flags, so a
job built here is the job the CLI would submit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bacalhau.errors import ValidationError

if TYPE_CHECKING:
    from bacalhau.models import InputSource, Job, SpecConfig

Inputs = Sequence["str | InputSource"]


def _settings(*, inputs: Inputs, outputs: Iterable[str], publisher: str | SpecConfig,
              cpu: str, memory: str, disk: str, gpu: str, network: str,
              domains: Iterable[str], timeout: int, queue_timeout: int, name: str,
              namespace: str, job_type: str, count: int, priority: int,
              labels: Mapping[str, str] | None,
              constraints: str) -> tuple[Any, Any, list[InputSource]]:
    from bacalhau.cli.spec import JobSettings, TaskSettings

    uris = [i for i in inputs if isinstance(i, str)]
    sources = [i for i in inputs if not isinstance(i, str)]
    publisher_text = publisher if isinstance(publisher, str) else ""
    task = TaskSettings(inputs=uris, outputs=list(outputs), publisher=publisher_text, cpu=cpu,
                        memory=memory, disk=disk, gpu=gpu, network=network,
                        domains=list(domains), timeout=timeout, queue_timeout=queue_timeout,
                        default_outputs=job_type not in ("daemon", "service"))
    job = JobSettings(name=name, namespace=namespace, type=job_type, count=count,
                      priority=priority, constraints=constraints,
                      labels=[f"{k}={v}" for k, v in (labels or {}).items()])
    return task, job, sources


def _finish(spec: dict[str, Any], sources: list[InputSource],
            publisher: str | SpecConfig) -> Job:
    from bacalhau.models import Job, SpecConfig

    job = Job.from_dict(spec)
    job.task.input_sources.extend(source.clone() for source in sources)
    if isinstance(publisher, SpecConfig):
        job.task.publisher = publisher
    return job


def _env(env: Mapping[str, str] | None) -> dict[str, str]:
    """Task environment variables, checked as `-e` is (names, the reserved BACALHAU_)."""
    out: dict[str, str] = {}
    for key, value in (env or {}).items():
        if not key or "=" in key:
            raise ValidationError(f"env: {key!r} is not a variable name")
        if key.upper().startswith("BACALHAU_"):
            raise ValidationError(f"env: {key!r}: names starting with BACALHAU_ are reserved "
                                  "for the variables every execution gets")
        out[str(key)] = str(value)
    return out


def _built(build: Any) -> dict[str, Any]:
    """Run a CLI builder; its usage errors become ValidationError with the same text."""
    import click

    try:
        return dict(build())
    except click.ClickException as exc:
        raise ValidationError(exc.format_message()) from None


def wasm_job(module: str | Path, *args: str, entry_point: str = "_start",
             env: Mapping[str, str] | None = None, import_modules: Iterable[str] = (),
             inputs: Inputs = (), outputs: Iterable[str] = (),
             publisher: str | SpecConfig = "local", cpu: str = "", memory: str = "",
             disk: str = "", gpu: str = "", network: str = "", domains: Iterable[str] = (),
             timeout: int = 0, queue_timeout: int = 0, name: str = "", namespace: str = "",
             job_type: str = "batch", count: int = 1, priority: int = 0,
             labels: Mapping[str, str] | None = None, constraints: str = "") -> Job:
    """A WASM job: `module` is a local .wasm file (sent inline), a URI (ipfs://, s3://,
    https://) or a path under an input's target; `args` are its arguments."""
    from bacalhau.cli.spec import build_wasm_job

    task, job, sources = _settings(
        inputs=inputs, outputs=outputs, publisher=publisher, cpu=cpu, memory=memory,
        disk=disk, gpu=gpu, network=network, domains=domains, timeout=timeout,
        queue_timeout=queue_timeout, name=name, namespace=namespace, job_type=job_type,
        count=count, priority=priority, labels=labels, constraints=constraints)
    variables = _env(env)
    spec = _built(lambda: build_wasm_job(
        str(module), list(args), entry_point=entry_point, import_modules=list(import_modules),
        task=task, job=job))
    built = _finish(spec, sources, publisher)
    built.task.env.update(variables)
    return built


def docker_job(image: str, *args: str, entrypoint: Sequence[str] | None = None,
               workdir: str = "", env: Mapping[str, str] | None = None,
               inputs: Inputs = (), outputs: Iterable[str] = (),
               publisher: str | SpecConfig = "local", cpu: str = "", memory: str = "",
               disk: str = "", gpu: str = "", network: str = "", domains: Iterable[str] = (),
               timeout: int = 0, queue_timeout: int = 0, name: str = "", namespace: str = "",
               job_type: str = "batch", count: int = 1, priority: int = 0,
               labels: Mapping[str, str] | None = None, constraints: str = "") -> Job:
    """A Docker job running `image` with `args` (after `entrypoint`, if given)."""
    from bacalhau.cli.spec import build_docker_job

    task, job, sources = _settings(
        inputs=inputs, outputs=outputs, publisher=publisher, cpu=cpu, memory=memory,
        disk=disk, gpu=gpu, network=network, domains=domains, timeout=timeout,
        queue_timeout=queue_timeout, name=name, namespace=namespace, job_type=job_type,
        count=count, priority=priority, labels=labels, constraints=constraints)
    variables = _env(env)
    spec = _built(lambda: build_docker_job(image, list(args), workdir=workdir, task=task,
                                           job=job))
    built = _finish(spec, sources, publisher)
    params = built.task.engine.params
    params["Entrypoint"] = [str(part) for part in entrypoint or []]
    params["EnvironmentVariables"] = [f"{k}={v}" for k, v in variables.items()]
    return built
