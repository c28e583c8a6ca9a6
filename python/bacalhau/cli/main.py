"""The `bacalhau` command: global options and the command groups (reference §7).

Commands are thin: they parse flags, call `bacalhau.api.client` (or the lead's node/devstack
entry points for `serve`/`devstack`) and format the answer. Errors from the server or the
network are printed as `Error: <message>` with a hint and exit code 1, never as a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from bacalhau.cli.classic import CLASSIC_TWINS
from bacalhau.cli.common import CLIContext, friendly_error
from bacalhau.cli.lazy import LazyCommand, LazyGroup

COMMANDS: dict[str, LazyCommand] = {
    "agent": LazyCommand("bacalhau.cli.agent:agent",
                         "Ask the node behind --api-host/--api-port about itself."),
    "auth": LazyCommand("bacalhau.cli.auth:auth",
                        "API credentials (BACALHAU_API_KEY, BACALHAU_API_USERNAME/PASSWORD)."),
    "cid": LazyCommand("bacalhau.cli.cid:cid", "Print the IPFS CID of PATH (a file or a "
                       "directory), as Kubo's `ipfs add -r` computes it."),
    "config": LazyCommand("bacalhau.cli.config_cmd:config",
                          "Read and change the configuration in <data dir>/config.yaml."),
    "describe": LazyCommand("bacalhau.cli.classic:describe", "Describe a job: the job, its "
                            "state, history and executions, as YAML (or JSON)."),
    "devstack": LazyCommand("bacalhau.cli.serve:devstack", "Run a local network of "
                            "orchestrators, compute nodes and hybrids on 127.0.0.1."),
    "docker": LazyCommand("bacalhau.cli.docker:docker", "Run Docker jobs."),
    "job": LazyCommand("bacalhau.cli.job:job", "Submit and manage jobs."),
    "node": LazyCommand("bacalhau.cli.node:node", "Inspect and manage the nodes of the network."),
    "serve": LazyCommand("bacalhau.cli.serve:serve", "Start a node."),
    "swarm-key": LazyCommand("bacalhau.cli.swarm:swarm_key",
                             "Create and check private-network keys (Kubo swarm.key format)."),
    "version": LazyCommand("bacalhau.cli.agent:version", "Get the client and server version."),
    "wasm": LazyCommand("bacalhau.cli.wasm:wasm", "Run WebAssembly jobs."),
}
"""The root's commands, each loaded when it runs (`bacalhau --help` imports none of them)."""

# Global options that may also be written after the subcommand (`bacalhau serve -c K=V`,
# `bacalhau job list --api-port 1235`), as cobra's persistent flags allow.
_GLOBAL_WITH_VALUE = ("--api-host", "--api-port", "--data-dir", "--log-level", "--config", "-c",
                      "--cacert")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options found after the subcommand to the front (stops at `--`)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in _GLOBAL_WITH_VALUE:
            if "=" in arg and name.startswith("--"):
                front.append(arg)
            elif i + 1 < len(args):
                front.extend(args[i : i + 2])
                i += 1
            else:
                rest.append(arg)  # let click report the missing value
        else:
            rest.append(arg)
        i += 1
    return front + rest


class BacalhauGroup(LazyGroup):
    """Root group: global options anywhere, and API/network failures as clean `Error:` lines."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except Exception as exc:
            cli = ctx.find_object(CLIContext)
            scheme = "https" if cli and (cli.tls or cli.insecure or cli.ca_file) else "http"
            url = f"{scheme}://{cli.api_host}:{cli.api_port}" if cli else "the API"
            friendly = friendly_error(exc, url)
            if friendly is None:
                raise
            raise friendly from None


@click.group(
    name="bacalhau", cls=BacalhauGroup, context_settings={"help_option_names": ["-h", "--help"]},
    lazy_commands={**COMMANDS, **CLASSIC_TWINS},
)
@click.option(
    "--api-host",
    envvar="BACALHAU_API_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Host of the Bacalhau API to talk to [env BACALHAU_API_HOST].",
)
@click.option(
    "--api-port",
    envvar="BACALHAU_API_PORT",
    type=click.IntRange(1, 65535),
    default=1234,
    show_default=True,
    help="Port of the Bacalhau API [env BACALHAU_API_PORT].",
)
@click.option(
    "--data-dir",
    envvar="BACALHAU_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory [env BACALHAU_DIR; default ~/.bacalhau].",
)
@click.option(
    "-c",
    "--config",
    "config",
    multiple=True,
    metavar="KEY=VALUE|FILE",
    help="Config override `Key.Path=value` or a YAML config file; repeatable, later wins.",
)
@click.option(
    "--log-level",
    envvar="LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default=None,
    help="Log level [env LOG_LEVEL; info for serve/devstack, warning otherwise].",
)
@click.option("--tls", is_flag=True, envvar="BACALHAU_API_TLS_USETLS",
              help="Talk to the API over HTTPS [env BACALHAU_API_TLS_USETLS].")
@click.option("--insecure", is_flag=True, envvar="BACALHAU_API_TLS_INSECURE",
              help="HTTPS without verifying the certificate (self-signed test nodes) "
                   "[env BACALHAU_API_TLS_INSECURE].")
@click.option("--cacert", envvar="BACALHAU_API_TLS_CAFILE", default="",
              type=click.Path(dir_okay=False),
              help="CA certificate to verify the API with (implies --tls), e.g. a self-signed "
                   "node's <DataDir>/tls/api.crt [env BACALHAU_API_TLS_CAFILE].")
@click.pass_context
def cli(
    ctx: click.Context,
    api_host: str,
    api_port: int,
    data_dir: Path | None,
    config: tuple[str, ...],
    log_level: str | None,
    tls: bool,
    insecure: bool,
    cacert: str,
) -> None:
    """Bacalhau: run compute jobs where the data is."""
    source = ctx.get_parameter_source
    ctx.obj = CLIContext(
        api_host=api_host,
        api_port=api_port,
        data_dir=(data_dir or Path(os.path.expanduser("~/.bacalhau"))).expanduser(),
        config=list(config),
        log_level=log_level,
        host_from_flag=source("api_host") != click.core.ParameterSource.DEFAULT,
        port_from_flag=source("api_port") != click.core.ParameterSource.DEFAULT,
        tls=tls,
        insecure=insecure,
        ca_file=cacert,
    )
    if ctx.invoked_subcommand not in ("serve", "devstack"):
        ctx.obj.setup_logging("warning")


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="bacalhau")
    except SystemExit as done:
        exit_without_teardown(done)
        raise


NODE_MODULES = ("bacalhau.node", "bacalhau.devstack")


def exit_without_teardown(done: SystemExit) -> None:
    """End a client command the way a normal exit does (atexit hooks, flushed streams) but
    without the interpreter's teardown, which frees every loaded module's objects one by one:
    ~15 ms of a `bacalhau docker run --wait` (issue 15). Returns, for the normal exit, when
    that teardown may matter: a node ran in this process (`serve`, `devstack`), another
    thread is alive, or the exit code is not a number."""
    import sys

    code = 0 if done.code is None else done.code
    threading = sys.modules.get("threading")
    if (not isinstance(code, int) or any(name in sys.modules for name in NODE_MODULES)
            or (threading is not None and threading.active_count() > 1)):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # e.g. a closed pipe: the normal exit reports it as Python does
        return
    import atexit

    atexit._run_exitfuncs()  # reports its callbacks' errors itself, and forgets them
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    main()
