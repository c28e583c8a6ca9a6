"""What the run commands share: the job, task, runtime, download and IPFS client flags, the
submit-and-watch flow (`job run`/`create`, `wasm run`, `docker run`) and the `job get` flow."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bacalhau.cli.common import CLIContext
from bacalhau.cli.flags import Seconds
from bacalhau.cli.output import compute_state, echo_doc, table
from bacalhau.cli.spec import (
    JOB_TYPES,
    LONG_RUNNING_TYPES,
    NETWORK_CHOICES,
    JobSettings,
    TaskSettings,
)
from bacalhau.config import Config, load_config
from bacalhau.errors import ConfigError

if TYPE_CHECKING:
    # The one-shot client in practice; downloads (aiohttp) are imported where they happen.
    from bacalhau.api.sync_client import Client

F = Callable[..., Any]


def _apply(func: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def job_options(func: F) -> F:
    """The job flags of every run command; the command receives them as a `JobSettings` in
    its `job_settings` argument (see `settings_from`)."""
    return _apply(func, [
        click.option("--name", default="", help="Job name [default: the job ID]. Submitting a "
                     "job with an existing name updates that job."),
        click.option("--namespace", default="", help="Namespace [default: default]."),
        click.option("--priority", type=int, default=0, show_default=True,
                     help="Job priority (higher first)."),
        click.option("--concurrency", "--count", "count", type=click.IntRange(min=1), default=1,
                     show_default=True,
                     help="How many nodes the job runs on (batch and service jobs).",),
        click.option("--target", type=click.Choice(["any", "all"]), default="any",
                     show_default=True,
                     help="any: --concurrency nodes (a batch job); all: every node matching "
                     "--selector (an ops job)."),
        click.option("--type", "job_type", type=click.Choice(JOB_TYPES, case_sensitive=False),
                     default=None,
                     help="Job type; overrides --target (daemon: every matching node, kept "
                     "running; service: `count` executions kept running)."),
        click.option("-l", "--labels", multiple=True, metavar="LABEL",
                     help="Job label, `key` or `key=value`; repeatable or comma separated. "
                     "Characters outside a-zA-Z0-9_:|- are stripped."),
        click.option("-s", "--selector", "--constraints", "constraints", default="",
                     metavar="SELECTOR",
                     help="Only run on nodes whose labels match this query: comma-separated "
                     "`key=value`, `key==value`, `key!=value` (all must match; also `key in "
                     "(a,b)`, `key`, `!key`)."),
    ])


def task_options(func: F) -> F:
    """The task flags of every run command (`TaskSettings`)."""
    return _apply(func, [
        click.option("--task-name", default="main", show_default=True, help="Name of the task."),
        click.option(
            "-i", "--input", "inputs", multiple=True, metavar="URI[:/PATH]",
            help="Input data, mounted at /inputs unless a path is given: ipfs://CID, "
            "s3://bucket/key, http(s)://..., file:///path (a path the node allows; opt rw=true), "
            "or a local file (sent inline); long form `src=URI,dst=/path,opt=key=value` (S3 "
            "opts: endpoint, region, versionID, checksum-256, filter). Repeatable."),
        click.option("-o", "--output", "outputs", multiple=True, metavar="NAME:/PATH",
                     help="Result path to publish; `outputs:/outputs` is always added unless "
                     "/outputs is given another name. Repeatable."),
        click.option("-p", "--publisher", default=None, metavar="PUBLISHER",
                     help="Where results are published: ipfs, local, noop, or "
                     "s3://bucket/key[,opt=endpoint=URL,opt=region=R,opt=encoding=plain] "
                     "[default: ipfs when the client knows an IPFS node (--ipfs-connect, or "
                     "ResultDownloaders.Types.IPFS.Endpoint or IPFS.Embedded.Enabled in its "
                     "config), else local]."),
        click.option("--cpu", default="", help="CPU the job needs, e.g. 500m or 2."),
        click.option("--memory", default="", help="Memory the job needs, e.g. 512Mb or 1Gi."),
        click.option("--disk", default="", help="Disk the job needs, e.g. 1Gb."),
        click.option("--gpu", default="", help="GPUs the job needs, e.g. 1."),
        click.option("--network", type=click.Choice(NETWORK_CHOICES, case_sensitive=False),
                     default=None,
                     help="Networking the job needs: none, http (only the --domain hosts), full "
                     "[default: the executor's default]."),
        click.option("--domain", "domains", multiple=True, metavar="DOMAIN",
                     help="Domain an --network http job may reach. Repeatable."),
        click.option("--timeout", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Execution timeout in seconds (batch and ops jobs; 0 = the node's "
                     "default)."),
        click.option("--queue-timeout", type=click.IntRange(min=0), default=0,
                     show_default=True,
                     help="How long the job may wait for a node, seconds (0 = fail at once)."),
    ])


def download_options(func: F) -> F:
    """`--download`, `--download-timeout-secs`, `--output-dir`, `--raw`."""
    return _apply(func, [
        click.option("--download", is_flag=True,
                     help="Download the results when the job completes."),
        click.option("--download-timeout-secs", type=Seconds(), default=300,
                     show_default=True,
                     help="Timeout for downloading the results: seconds or a duration (5m)."),
        click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None,
                     help="Where results are written [default: ./job-<id>]; implies --download."),
        click.option("--raw", is_flag=True,
                     help="Keep each execution's result in its own folder; do not merge."),
    ])


def ipfs_options(func: F) -> F:
    """The IPFS client flags (`IPFSFlags`): how `--download`/`get` fetch `ipfs` results, through
    an external IPFS node (`--ipfs-connect`) or the short-lived embedded node the CLI starts
    (`--ipfs-swarm-addrs`, `--ipfs-swarm-key`, `--ipfs-serve-path`)."""
    return _apply(func, [
        click.option("--ipfs-connect", default="", metavar="MULTIADDR|URL",
                     help="The RPC API of an external IPFS node (Kubo) to download IPFS results "
                     "through instead of starting an embedded node (sets "
                     "ResultDownloaders.Types.IPFS.Endpoint), e.g. /ip4/127.0.0.1/tcp/5001."),
        click.option("--ipfs-serve-path", default="", metavar="PATH",
                     help="Repository folder of the embedded IPFS node that downloads IPFS "
                     "results; kept afterwards, with the blocks it fetched "
                     "[default: a temporary folder in the data dir, removed afterwards]."),
        click.option("--ipfs-swarm-addrs", multiple=True, metavar="MULTIADDR",
                     help="IPFS peer the embedded node connects to, to find the results "
                     "(/ip4/HOST/tcp/PORT/p2p/PEERID), besides IPFS.Embedded.Peers and the "
                     "addresses a result names. Repeatable or comma separated."),
        click.option("--ipfs-swarm-key", default="", metavar="PATH",
                     help="Swarm key file (Kubo swarm.key) of the private IPFS network the "
                     "results are in; the embedded node joins it (overrides "
                     "IPFS.Embedded.SwarmKeyPath)."),
        click.option("--private-internal-ipfs/--no-private-internal-ipfs", default=True,
                     show_default=True,
                     help="The embedded IPFS node stays off the public IPFS network (it only "
                     "connects to the peers it is given); false is not supported."),
    ])


IPFS_ENDPOINT_KEY = "ResultDownloaders.Types.IPFS.Endpoint"
_EMBEDDED_FLAGS = ("--ipfs-serve-path", "--ipfs-swarm-addrs", "--ipfs-swarm-key")


@dataclass(slots=True)
class IPFSFlags:
    """The IPFS client flags of one invocation."""

    ipfs_connect: str = ""
    ipfs_serve_path: str = ""
    ipfs_swarm_addrs: Sequence[str] = ()
    ipfs_swarm_key: str = ""
    private_internal_ipfs: bool = True

    def apply(self, cli: CLIContext) -> None:
        """Check the flags (bad ones raise `click.UsageError`/`BadParameter` before anything
        is submitted) and normalise them; `--ipfs-connect` becomes the CLI's
        `ResultDownloaders.Types.IPFS.Endpoint` (a `-c` override: `cli.config`)."""
        if not self.private_internal_ipfs:
            raise click.UsageError(
                "--private-internal-ipfs=false is not supported: this build's embedded IPFS "
                "node never joins the public network. Use --ipfs-connect with an IPFS node "
                "that does, or --ipfs-swarm-addrs to name the peers holding the results")
        if self.ipfs_connect:
            given = [flag for flag, value in zip(
                _EMBEDDED_FLAGS,
                (self.ipfs_serve_path, self.ipfs_swarm_addrs, self.ipfs_swarm_key),
                strict=True) if value]
            if given:
                raise click.UsageError(
                    f"{', '.join(given)} tune(s) the embedded IPFS node, which --ipfs-connect "
                    "replaces: give the external node's peers and key to that node instead, "
                    "or drop --ipfs-connect")
            if f"{IPFS_ENDPOINT_KEY}={self.ipfs_connect}" not in cli.config:
                cli.config.append(f"{IPFS_ENDPOINT_KEY}={self.ipfs_connect}")
        addrs = [a.strip() for value in self.ipfs_swarm_addrs for a in value.split(",")
                 if a.strip()]
        for addr in addrs:
            if not addr.startswith("/") or "/p2p/" not in addr:
                raise click.BadParameter(
                    f"{addr!r} is not an IPFS peer address; expected a multiaddr with the "
                    "peer id, /ip4/HOST/tcp/PORT/p2p/PEERID", param_hint="--ipfs-swarm-addrs")
        self.ipfs_swarm_addrs = tuple(addrs)
        if self.ipfs_swarm_key:
            from bacalhau.transport import swarmkey

            key = Path(self.ipfs_swarm_key).expanduser().resolve()
            try:
                swarmkey.read(key)
            except ConfigError as exc:
                raise click.BadParameter(str(exc), param_hint="--ipfs-swarm-key") from None
            self.ipfs_swarm_key = str(key)
        if self.ipfs_serve_path:
            repo = Path(self.ipfs_serve_path).expanduser().resolve()
            if repo.exists() and not repo.is_dir():
                raise click.BadParameter(f"{repo} exists and is not a folder",
                                         param_hint="--ipfs-serve-path")
            self.ipfs_serve_path = str(repo)

    def download_config(self, cli: CLIContext) -> Callable[[], Config]:
        """What `job get` fetches `ipfs` results with (`bacalhau.ipfs.wiring.downloader`):
        the CLI's config plus `--ipfs-swarm-addrs` (added to `IPFS.Embedded.Peers`) and
        `--ipfs-swarm-key` (`IPFS.Embedded.SwarmKeyPath`). Built when needed."""
        def build() -> Config:
            config = cli_config(cli)
            if self.ipfs_swarm_addrs:
                peers = config.strings("IPFS.Embedded.Peers")
                config.set("IPFS.Embedded.Peers",
                           peers + [a for a in self.ipfs_swarm_addrs if a not in peers])
            if self.ipfs_swarm_key:
                config.set("IPFS.Embedded.SwarmKeyPath", self.ipfs_swarm_key)
            return config
        return build

    @property
    def repo(self) -> Path | None:
        """`--ipfs-serve-path`: the short-lived embedded node's repo, kept afterwards."""
        return Path(self.ipfs_serve_path) if self.ipfs_serve_path else None


def cli_config(cli: CLIContext) -> Config:
    """The client's effective config: `<data dir>/config.yaml`, `BACALHAU_*` env, `-c`."""
    try:
        return load_config(cli.data_dir, cli.config)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def ipfs_configured(cli: CLIContext) -> bool:
    """Whether the client knows an IPFS node, so `-p` defaults to ipfs: `--ipfs-connect`, or
    `ResultDownloaders.Types.IPFS.Endpoint` or `IPFS.Embedded.Enabled` in the client's config
    (`-c`, env, `<data dir>/config.yaml`: the user runs an IPFS-enabled node there)."""
    config = cli_config(cli)
    return bool(str(config.get(IPFS_ENDPOINT_KEY) or "").strip()) or config.flag(
        "IPFS.Embedded.Enabled")


@dataclass(slots=True)
class RunFlags:
    """The runtime, download and IPFS flags of a run command (`pop_run_flags`)."""

    wait: bool = True
    wait_timeout_secs: int = 600
    id_only: bool = False
    node_details: bool = False
    follow: bool = False
    gettimeout: int = 10
    dry_run: bool = False
    download: bool = False
    download_timeout_secs: int = 300
    output_dir: Path | None = None
    raw: bool = False
    ipfs: IPFSFlags = field(default_factory=IPFSFlags)


_JOB_KEYS = ("name", "namespace", "priority", "count", "target", "job_type", "labels",
             "constraints")
_TASK_KEYS = ("task_name", "inputs", "outputs", "publisher", "cpu", "memory", "disk", "gpu",
              "network", "domains", "timeout", "queue_timeout")
_RUN_KEYS = ("wait", "wait_timeout_secs", "id_only", "node_details", "follow", "gettimeout",
             "dry_run", "download", "download_timeout_secs", "output_dir", "raw")
_IPFS_KEYS = ("ipfs_connect", "ipfs_serve_path", "ipfs_swarm_addrs", "ipfs_swarm_key",
              "private_internal_ipfs")


def pop_ipfs_flags(options: dict[str, Any]) -> IPFSFlags:
    """Take the `ipfs_options` values out of a command's keyword arguments."""
    return IPFSFlags(**{key: options.pop(key) for key in _IPFS_KEYS if key in options})


def pop_run_flags(options: dict[str, Any]) -> RunFlags:
    """Take the `runtime_options`, `download_options` and `ipfs_options` values out of a
    command's keyword arguments (missing ones keep their defaults)."""
    ipfs = pop_ipfs_flags(options)
    return RunFlags(**{key: options.pop(key) for key in _RUN_KEYS if key in options}, ipfs=ipfs)


def settings_from(
    options: dict[str, Any], cli: CLIContext | None = None
) -> tuple[JobSettings, TaskSettings]:
    """Take the `job_options` and `task_options` values out of a command's keyword arguments.
    An unset `-p` becomes ipfs when the CLI knows an IPFS node, else local."""
    job = {key: options.pop(key) for key in _JOB_KEYS}
    job["type"] = job.pop("job_type") or ""
    task = {key: options.pop(key) for key in _TASK_KEYS}
    task["network"] = task["network"] or ""
    if not task["publisher"]:
        task["publisher"] = "ipfs" if cli is not None and ipfs_configured(cli) else "local"
    job_settings = JobSettings(**job)
    task_settings = TaskSettings(**task)
    task_settings.default_outputs = job_settings.job_type() not in LONG_RUNNING_TYPES
    return job_settings, task_settings


def engine_run_options(func: F) -> F:
    """Every flag an engine's `run` command shares (`docker run`, `wasm run`): task, job,
    runtime, download and IPFS flags; read them back with `run_settings`."""
    return _apply(func, [task_options, job_options, runtime_options, download_options,
                         ipfs_options])


def run_settings(cli: CLIContext,
                 options: dict[str, Any]) -> tuple[RunFlags, JobSettings, TaskSettings]:
    """Take the `engine_run_options` values out of a command's keyword arguments, applying
    the IPFS client flags first (they decide the default publisher)."""
    flags = pop_run_flags(options)
    flags.ipfs.apply(cli)
    job_settings, task_settings = settings_from(options, cli)
    return flags, job_settings, task_settings


def run_spec(cli: CLIContext, spec: dict[str, Any], flags: RunFlags, *, force: bool = False,
             output: str = "") -> None:
    """Print (`--dry-run`) or submit a built job, watch it, and download its results. The
    caller has applied `flags.ipfs` (before building the job: it decides the publisher)."""
    if flags.dry_run:
        echo_doc(spec, output or "yaml")
        return
    download = flags.download or flags.output_dir is not None
    if download and str(spec.get("Type", "")).lower() in LONG_RUNNING_TYPES:
        raise click.UsageError(
            f"--download: {spec['Type']} jobs keep running and publish no results"
        )
    if download and not flags.wait:
        raise click.UsageError("--download needs --wait: results exist only after the job ends")
    with cli.client() as client:
        final = submit_and_watch(
            client,
            spec,
            force=force,
            wait=flags.wait,
            wait_timeout=flags.wait_timeout_secs,
            id_only=flags.id_only and not flags.node_details,
            follow=flags.follow,
            start_timeout=flags.gettimeout,
            output=output,
        )
        if final is not None and flags.node_details:
            print_node_details(client, str(final.get("ID", "")))
        if download and final is not None:
            click.echo("")
            get_results(
                client,
                str(final.get("ID", "")),
                output_dir=flags.output_dir,
                raw=flags.raw,
                timeout=flags.download_timeout_secs,
                namespace=str(final.get("Namespace", "")),
                config=flags.ipfs.download_config(cli),  # how ipfs results are fetched
                ipfs_repo=flags.ipfs.repo,
            )


def print_node_details(client: Client, job_id: str) -> None:
    """`--node-details`: which node ran each execution, and how it ended."""
    items = client.job_executions(job_id).get("Items") or []
    click.echo("")
    table(
        ["EXECUTION", "NODE ID", "STATE", "EXIT CODE"],
        [
            [
                str(e.get("ID", "")),
                str(e.get("NodeID", "")),
                compute_state(e.get("ComputeState")),
                ((e.get("RunOutput") or {}).get("ExitCode", "")),
            ]
            for e in items
        ],
        title="Nodes",
    )


def runtime_options(func: F) -> F:
    """`--wait`, `--wait-timeout-secs`, `--id-only`, `--node-details`, `-f/--follow`,
    `-g/--gettimeout`, `--dry-run`."""
    options = [
        click.option(
            "--wait/--no-wait",
            default=True,
            show_default=True,
            help="Wait for the job to finish, showing its events as they happen (--wait=false "
            "returns as soon as the job is submitted).",
        ),
        click.option(
            "--wait-timeout-secs",
            type=click.IntRange(min=1),
            default=600,
            show_default=True,
            help="How long --wait waits before giving up (the job keeps running).",
        ),
        click.option("--id-only", is_flag=True, help="Print only the job ID."),
        click.option("--node-details", is_flag=True,
                     help="Print the nodes that ran the job's executions (overrides --id-only)."),
        click.option(
            "-f", "--follow", is_flag=True, help="Stream the job's logs after submitting."
        ),
        click.option("-g", "--gettimeout", type=click.IntRange(min=1), default=10,
                     show_default=True,
                     help="Seconds --follow waits for the job to be scheduled before streaming "
                     "its logs."),
        click.option(
            "--dry-run", is_flag=True,
            help="Print the job that would be submitted (YAML) and submit nothing.",
        ),
    ]
    return _apply(func, options)


def submit_and_watch(
    client: Client,
    job: dict[str, Any],
    *,
    force: bool = False,
    wait: bool = True,
    wait_timeout: float = 600.0,
    id_only: bool = False,
    follow: bool = False,
    start_timeout: float = 10.0,
    output: str = "",
) -> dict[str, Any] | None:
    """Submit `job`, then wait/follow as asked. Returns the final Job when it waited."""
    answer = client.put_job(job, force=force)
    # Imported once the job is in: while it runs, not before the user's job is submitted.
    from bacalhau.cli import progress

    job_id = str(answer.get("JobID", ""))
    for warning in answer.get("Warnings") or []:
        click.echo(f"Warning: {warning}", err=True)

    if id_only:
        click.echo(job_id)
    else:
        click.echo(f"Job successfully submitted. Job ID: {job_id}")

    if follow:
        client.run(progress.wait_until_started(client.aio, job_id, timeout=start_timeout))
        client.run(progress.follow_logs(client.aio, job_id))
        final = client.get_job(job_id).get("Job") or {}
        progress.raise_if_failed(final)
        return final

    if not wait:
        if not id_only:
            click.echo("To check on the job, execute:")
            click.echo(f"\tbacalhau job describe {job_id}")
        return None

    long_poll = min(progress.LONG_POLL, float(getattr(client, "timeout", 30.0)) / 2)
    if id_only:
        final = progress.watch_job(client, job_id, timeout=wait_timeout, long_poll=long_poll,
                                   echo=lambda _line: None)
    else:
        click.echo(
            "Checking job status... (Enter Ctrl+C to exit at any time, "
            "your job will continue running):"
        )
        click.echo("")
        try:
            final = progress.watch_job(
                client,
                job_id,
                job_type=str(job.get("Type", "batch")).lower(),
                timeout=wait_timeout,
                long_poll=long_poll,
            )
        except KeyboardInterrupt:
            raise click.ClickException(
                f"stopped watching; the job continues. Check on it with: "
                f"bacalhau job describe {job_id}"
            ) from None
        if output:
            echo_doc(final, output)
        else:
            progress.print_summary(final)
    progress.raise_if_failed(final)
    return final


def get_results(
    client: Client,
    job_id: str,
    *,
    output_dir: Path | None = None,
    raw: bool = False,
    timeout: float = 300.0,
    namespace: str = "",
    config: Callable[[], Config] | Config | None = None,
    ipfs_repo: Path | None = None,
) -> None:
    """Download and merge a job's results, printing where they went. `config` and `ipfs_repo`
    say how `ipfs` results are fetched (`IPFSFlags.download_config`, `IPFSFlags.repo`)."""
    from bacalhau.cli.result_errors import ResultDownloadError
    from bacalhau.cli.results import (
        NoResults,
        ResultMismatch,
        default_output_dir,
        download_results,
    )
    from bacalhau.cli.s3results import S3DownloadError

    out_dir = output_dir or default_output_dir(job_id, namespace)
    try:
        client.run(
            download_results(
                client.aio, job_id, out_dir, raw=raw, timeout=timeout, namespace=namespace,
                config=config, ipfs_repo=ipfs_repo,
            )
        )
    except (ResultMismatch, ResultDownloadError, S3DownloadError) as exc:
        raise click.ClickException(str(exc)) from None
    except NoResults:
        click.echo("No results found")
        click.echo(
            "Hint: the job published no results (no publisher, or no completed execution). "
            f"Its output may still be in the logs: bacalhau job logs {job_id}"
        )
        return
    except Exception as exc:
        if type(exc).__name__ != "MergeError":
            raise
        message = str(exc)
        if not message.startswith("cannot merge"):
            message = f"cannot merge results: {message}"
        if "--raw" not in message:
            message += "\nHint: use --raw to keep each result in its own folder"
        raise click.ClickException(message) from None
    click.echo(f"Results for job '{job_id}' have been written to...")
    click.echo(str(out_dir))
