"""The documented run flags of `docker run`/`wasm run` (issue 8) and the `-i`/`-p` URI syntax
(issue 6): each flag lands in its wire field, checked through `--dry-run` and a fake API;
the classic verbs are the same commands as their `job` twins; help lists every flag."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from bacalhau.cli.classic import CLASSIC_TWINS
from bacalhau.cli.flags import Seconds
from bacalhau.cli.main import cli
from bacalhau.cli.spec import parse_input, parse_labels, publisher_spec
from tests.unit.test_cli_support import JOB_ID, FakeBacalhau, fake_api

pytestmark = pytest.mark.unit
__all__ = ["fake_api"]

JOBS = "/api/v1/orchestrator/jobs"
IMAGE = "bacalhau-py/test:busybox"


def run_cli(server: FakeBacalhau | None, *args: str, env: dict[str, str] | None = None) -> Result:
    port = str(server.port) if server else "1"
    return CliRunner().invoke(cli, ["--api-port", port, *args], env=env)


def dry_run(*args: str) -> dict[str, Any]:
    result = run_cli(None, "docker", "run", "--dry-run", *args)
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.output)


# ---------------------------------------------------------------- -i / -p (issue 6)


@pytest.mark.parametrize(
    ("spec", "source", "target"),
    [
        ("ipfs://QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
         {"Type": "ipfs", "Params": {"CID": "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"}},
         "/inputs"),
        ("ipfs://bafyabc:/data", {"Type": "ipfs", "Params": {"CID": "bafyabc"}}, "/data"),
        ("s3://bucket/path/key.csv", {"Type": "s3", "Params": {"Bucket": "bucket",
                                                               "Key": "path/key.csv"}},
         "/inputs"),
        ("s3://bucket/prefix/*:/in", {"Type": "s3", "Params": {"Bucket": "bucket",
                                                               "Key": "prefix/*"}}, "/in"),
        ("src=s3://b/k,dst=/d,opt=endpoint=http://127.0.0.1:9000,opt=region=eu-west-1,"
         "opt=versionID=v1,opt=checksum-256=abc=,opt=filter=.*csv",
         {"Type": "s3", "Params": {"Bucket": "b", "Key": "k", "Endpoint": "http://127.0.0.1:9000",
                                   "Region": "eu-west-1", "VersionID": "v1",
                                   "ChecksumSHA256": "abc=", "Filter": ".*csv"}}, "/d"),
        ("s3://b/data/*,opt=endpoint=http://127.0.0.1:9000,opt=region=eu-west-1",
         {"Type": "s3", "Params": {"Bucket": "b", "Key": "data/*",
                                   "Endpoint": "http://127.0.0.1:9000", "Region": "eu-west-1"}},
         "/inputs"),
        ("s3://b/k:/in,opt=region=r,dst=/d", {"Type": "s3", "Params": {
            "Bucket": "b", "Key": "k", "Region": "r"}}, "/d"),
        ("https://example.com/a?x=1,2", {"Type": "urlDownload",
                                         "Params": {"URL": "https://example.com/a?x=1,2"}},
         "/inputs"),
        ("https://example.com/a.txt", {"Type": "urlDownload",
                                       "Params": {"URL": "https://example.com/a.txt"}},
         "/inputs"),
        ("file:///srv/data:/mnt", {"Type": "local", "Params": {"SourcePath": "/srv/data"}},
         "/mnt"),
        ("src=file:///srv/data,dst=/mnt,opt=rw=true",
         {"Type": "local", "Params": {"SourcePath": "/srv/data", "ReadWrite": True}}, "/mnt"),
    ],
)
def test_input_uris_make_the_wire_specconfig(spec: str, source: dict[str, Any],
                                             target: str) -> None:
    parsed = parse_input(spec)
    assert parsed["Source"] == source
    assert parsed["Target"] == target
    uri = re.split(r",(?=(?:opt|dst)=)", spec)[0].removeprefix("src=")
    assert parsed["Alias"] == re.sub(r":/[a-z]+$", "", uri)  # alias = the source URI


def test_inputs_reach_the_job_through_dry_run() -> None:
    job = dry_run("-i", "ipfs://QmCID", "-i", "s3://bkt/key:/s3", IMAGE)
    sources = job["Tasks"][0]["InputSources"]
    assert [s["Source"]["Type"] for s in sources] == ["ipfs", "s3"]
    assert [s["Target"] for s in sources] == ["/inputs", "/s3"]


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        ("local", {"Type": "local"}),
        ("noop", {"Type": "noop"}),
        ("IPFS", {"Type": "ipfs"}),
        ("s3://results/jobs/{jobID}", {"Type": "s3", "Params": {"Bucket": "results",
                                                                "Key": "jobs/{jobID}"}}),
        ("s3://b/k,opt=endpoint=http://127.0.0.1:9000,opt=region=us-east-1,opt=encoding=plain",
         {"Type": "s3", "Params": {"Bucket": "b", "Key": "k", "Endpoint": "http://127.0.0.1:9000",
                                   "Region": "us-east-1", "Encoding": "plain"}}),
    ],
)
def test_publisher_values(value: str, spec: dict[str, Any]) -> None:
    assert publisher_spec(value) == spec
    assert dry_run("-p", value, IMAGE)["Tasks"][0]["Publisher"] == spec


@pytest.mark.parametrize(
    ("value", "message"),
    [("s3://bucket", "names no key"), ("s3://b/k,opt=acl=public", "unknown option 'acl'"),
     ("s3://b/k,opt=encoding=zip", "not gzip or plain"), ("gcs://b/k", "is not a publisher")],
)
def test_bad_publishers_say_what_to_write(value: str, message: str) -> None:
    with pytest.raises(click.BadParameter, match=re.escape(message)):
        publisher_spec(value)


@pytest.mark.parametrize(
    ("args", "env", "config_file", "publisher"),
    [
        ([], {}, "", "local"),
        (["--ipfs-swarm-addrs", "/ip4/127.0.0.1/tcp/1/p2p/QmA"], {}, "", "local"),
        (["--ipfs-connect", "/ip4/127.0.0.1/tcp/5001"], {}, "", "ipfs"),
        (["-c", "ResultDownloaders.Types.IPFS.Endpoint=/ip4/127.0.0.1/tcp/5001"], {}, "", "ipfs"),
        ([], {"BACALHAU_RESULTDOWNLOADERS_TYPES_IPFS_ENDPOINT": "http://127.0.0.1:5001"}, "",
         "ipfs"),
        ([], {}, "ResultDownloaders:\n  Types:\n    IPFS:\n      Endpoint: /ip4/1.2.3.4/tcp/5001\n",
         "ipfs"),
        ([], {}, "IPFS:\n  Embedded:\n    Enabled: true\n", "ipfs"),
        (["-c", "IPFS.Embedded.Enabled=false"], {}, "IPFS:\n  Embedded:\n    Enabled: true\n",
         "local"),
        (["-p", "local", "--ipfs-connect", "/ip4/127.0.0.1/tcp/5001"], {}, "", "local"),
    ],
)
def test_default_publisher_is_ipfs_when_the_client_knows_an_ipfs_node(
        args: list[str], env: dict[str, str], config_file: str, publisher: str,
        tmp_path: Path) -> None:
    """-p defaults to ipfs when the client can fetch IPFS results: --ipfs-connect, or an IPFS
    endpoint / the embedded node enabled in its config (-c, env, <data dir>/config.yaml)."""
    data_dir = tmp_path / "client"
    data_dir.mkdir()
    if config_file:
        (data_dir / "config.yaml").write_text(config_file)
    global_args = [a for i, a in enumerate(args) if a == "-c" or (i and args[i - 1] == "-c")]
    run_args = [a for a in args if a not in global_args]
    result = run_cli(None, *global_args, "docker", "run", "--dry-run", *run_args, IMAGE,
                     env={"BACALHAU_DIR": str(data_dir), **env})
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["Tasks"][0]["Publisher"] == {"Type": publisher}


# ---------------------------------------------------------------- job and task flags


def test_documented_flags_land_in_their_fields() -> None:
    job = dry_run(
        "--concurrency", "3", "-l", "team=data", "-l", "weird label!✨", "-s",
        "zone=eu,gpu!=none,tier==gold", "--timeout", "45", "--network", "http",
        "--domain", "example.com", "--cpu", "250m", "--memory", "64Mb", "--disk", "1Gb",
        "--gpu", "1", "-e", "A=1", "--entrypoint", "/bin/sh", "-w", "/work",
        "-o", "logs:/logs", IMAGE, "--", "-c", "echo hi",
    )
    assert job["Count"] == 3
    assert job["Labels"] == {"team": "data", "weirdlabel": ""}
    assert job["Constraints"] == [
        {"Key": "zone", "Operator": "=", "Values": ["eu"]},
        {"Key": "gpu", "Operator": "!=", "Values": ["none"]},
        {"Key": "tier", "Operator": "==", "Values": ["gold"]},
    ]
    (task,) = job["Tasks"]
    assert task["Timeouts"] == {"ExecutionTimeout": 45}
    assert task["Network"] == {"Type": "HTTP", "Domains": ["example.com"]}
    assert task["Resources"] == {"CPU": "250m", "Memory": "64Mb", "Disk": "1Gb", "GPU": "1"}
    assert task["ResultPaths"] == [{"Name": "outputs", "Path": "/outputs"},
                                   {"Name": "logs", "Path": "/logs"}]
    params = task["Engine"]["Params"]
    assert params["Entrypoint"] == ["/bin/sh"] and params["WorkingDirectory"] == "/work"
    assert params["Parameters"] == ["-c", "echo hi"]
    assert params["EnvironmentVariables"] == ["A=1"]


def test_outputs_path_mapped_to_another_name_is_not_duplicated() -> None:
    job = dry_run("-o", "results:/outputs", IMAGE)
    assert job["Tasks"][0]["ResultPaths"] == [{"Name": "results", "Path": "/outputs"}]


def test_target_all_is_an_ops_job_on_every_matching_node() -> None:
    job = dry_run("--target", "all", "-s", "zone=eu", IMAGE)
    assert job["Type"] == "ops" and "Count" not in job


def test_labels_keep_only_the_documented_characters() -> None:
    assert parse_labels(["a b=c d", "k:1|x-y_z=v!", "x,y=1"]) == {
        "ab": "cd", "k:1|x-y_z": "v", "x": "", "y": "1"}
    with pytest.raises(click.BadParameter, match="no letters"):
        parse_labels(["!!!"])


def test_wasm_import_module_urls_are_downloaded_by_the_node(tmp_path: Path) -> None:
    module = tmp_path / "main.wasm"
    module.write_bytes(b"\x00asm\x01\x00\x00\x00")
    result = run_cli(None, "wasm", "run", "--dry-run", "-U", "https://h.example/lib/util.wasm",
                     "--entry-point", "hello", str(module))
    assert result.exit_code == 0, result.output
    task = yaml.safe_load(result.output)["Tasks"][0]
    assert task["Engine"]["Params"]["Entrypoint"] == "hello"
    assert task["Engine"]["Params"]["ImportModules"] == ["/wasm/imports/0/util.wasm"]
    assert task["InputSources"][1]["Source"] == {
        "Type": "urlDownload", "Params": {"URL": "https://h.example/lib/util.wasm"}}
    assert task["InputSources"][1]["Target"] == "/wasm/imports/0"


# ---------------------------------------------------------------- runtime flags


@pytest.mark.parametrize("wait", ["--wait=false", "--no-wait", "--wait=False", "--wait=0"])
def test_wait_false_returns_at_once(fake_api: FakeBacalhau, wait: str) -> None:
    fake_api.on("PUT", JOBS, {"JobID": JOB_ID, "EvaluationID": "ev", "Warnings": []})
    result = run_cli(fake_api, "docker", "run", wait, "--id-only", IMAGE)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == JOB_ID
    assert [r.method for r in fake_api.requests] == ["PUT"]  # no polling


def test_bool_flag_with_a_bad_value_is_refused() -> None:
    result = run_cli(None, "docker", "run", "--wait=maybe", IMAGE)
    assert result.exit_code == 2
    assert "use --wait=true or --wait=false" in result.output


def test_dry_run_submits_nothing(fake_api: FakeBacalhau) -> None:
    result = run_cli(fake_api, "docker", "run", "--dry-run", IMAGE)
    assert result.exit_code == 0
    assert fake_api.requests == []


PEER = "/ip4/127.0.0.1/tcp/4001/p2p/QmXbYGb6cj32Jc4jVYoGp4o1xUVjg9o33XoTxE3sJo3Rb1"


def _invoke(command: list[str], flags: list[str], tmp_path: Path) -> Result:
    args = {"get": [*command, *flags, "j-x"], "create": [*command, *flags, "-"]}.get(
        command[0], [*command, *flags, IMAGE])
    return CliRunner().invoke(cli, ["--api-port", "1", *args], input="Type: batch\n",
                              env={"BACALHAU_DIR": str(tmp_path / "client")})


COMMANDS = [["docker", "run", "--dry-run"], ["get"], ["create"]]


@pytest.mark.parametrize("command", COMMANDS)
def test_public_ipfs_is_refused_clearly(command: list[str], tmp_path: Path) -> None:
    result = _invoke(command, ["--private-internal-ipfs=false"], tmp_path)
    assert result.exit_code == 2, result.output
    assert "never joins the public network" in result.output
    assert "--ipfs-connect" in result.output


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ipfs-swarm-addrs", "/ip4/1.2.3.4/tcp/4001"], "not an IPFS peer address"),
        (["--ipfs-swarm-addrs", f"{PEER},nonsense"], "'nonsense' is not an IPFS peer address"),
        (["--ipfs-swarm-key", "missing.key"], "missing.key"),
        (["--ipfs-connect", "/ip4/127.0.0.1/tcp/5001", "--ipfs-swarm-addrs", PEER],
         "--ipfs-swarm-addrs tune(s) the embedded IPFS node, which --ipfs-connect replaces"),
        (["--ipfs-connect", "/ip4/127.0.0.1/tcp/5001", "--ipfs-serve-path", "x"],
         "--ipfs-serve-path tune(s)"),
    ],
)
@pytest.mark.parametrize("command", COMMANDS)
def test_bad_ipfs_flags_fail_before_anything_is_sent(command: list[str], flags: list[str],
                                                      message: str, tmp_path: Path) -> None:
    result = _invoke(command, flags, tmp_path)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output


def test_a_serve_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = _invoke(["get"], ["--ipfs-serve-path", str(tmp_path / "file")], tmp_path)
    assert result.exit_code == 2 and "is not a folder" in result.output, result.output


def test_swarm_flags_reach_the_download_config(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """--ipfs-swarm-addrs adds to IPFS.Embedded.Peers of the client's config, --ipfs-swarm-key
    replaces IPFS.Embedded.SwarmKeyPath (absolute), --ipfs-serve-path is the kept repo."""
    from bacalhau.cli.common import CLIContext
    from bacalhau.cli.run import IPFSFlags
    from bacalhau.transport import swarmkey

    key = tmp_path / "swarm.key"
    swarmkey.write(key)
    data_dir = tmp_path / "client"
    data_dir.mkdir()
    (data_dir / "config.yaml").write_text(
        "IPFS:\n  Embedded:\n    Peers: [/ip4/10.0.0.1/tcp/1/p2p/QmA]\n"
        "    SwarmKeyPath: /elsewhere/swarm.key\n")
    ctx = CLIContext(data_dir=data_dir)
    flags = IPFSFlags(ipfs_swarm_addrs=(PEER,), ipfs_swarm_key=str(key.relative_to(tmp_path)),
                      ipfs_serve_path="repo")
    monkeypatch.chdir(tmp_path)  # relative paths are resolved where the CLI runs
    flags.apply(ctx)
    config = flags.download_config(ctx)()
    assert config.strings("IPFS.Embedded.Peers") == ["/ip4/10.0.0.1/tcp/1/p2p/QmA", PEER]
    assert config.get("IPFS.Embedded.SwarmKeyPath") == str(key)
    assert flags.repo == tmp_path / "repo"
    assert ctx.config == []  # nothing but --ipfs-connect becomes a -c override
    assert IPFSFlags().repo is None


# ---------------------------------------------------------------- help and classic verbs

DOCKER_FLAGS = [
    "--concurrency", "--cpu", "--memory", "--disk", "--gpu", "--domain", "--download",
    "--download-timeout-secs", "--dry-run", "--entrypoint", "--env", "--follow", "--gettimeout",
    "--id-only", "--input", "--labels", "--network", "--node-details", "--output",
    "--output-dir", "--publisher", "--raw", "--selector", "--target", "--timeout", "--wait",
    "--wait-timeout-secs", "--workdir", "--ipfs-connect", "--ipfs-serve-path",
    "--ipfs-swarm-addrs", "--ipfs-swarm-key", "--private-internal-ipfs",
]
SHORT = ["-e,", "-f,", "-g,", "-i,", "-l,", "-o,", "-p,", "-s,", "-w,"]
DEFAULTS = ["[default: 1", "[default: 300]", "[default: 10;", "[default: any]",
            "[default: wait]", "[default: 600", "[default: private-internal-ipfs]"]


def _help(*command: str) -> str:
    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def _listed_flags(text: str) -> list[str]:
    options = text.split("Options:", 1)[1]
    return re.findall(r"^  (?:-\w, )?(--[\w-]+)", options, flags=re.M)


def test_docker_run_help_lists_every_documented_flag_sorted_with_defaults() -> None:
    text = _help("docker", "run")
    listed = _listed_flags(text)
    for flag in DOCKER_FLAGS:
        assert flag in listed, flag
    for short in SHORT:
        assert f"  {short} --" in text, short
    for default in DEFAULTS:
        assert default in text, default
    assert listed == sorted(listed, key=lambda f: f.lstrip("-").lower())


def test_wasm_run_help_lists_its_own_flags() -> None:
    text = _help("wasm", "run")
    for flag in ("--entry-point", "--import-module-urls", "--import-module-volumes",
                 "--concurrency", "--ipfs-connect", "--wait"):
        assert flag in text
    assert "-U, --import-module-urls" in text and "-I, --import-module-volumes" in text


def test_get_help_has_download_and_ipfs_flags() -> None:
    text = _help("get")
    for flag in ("--download-timeout-secs", "--output-dir", "--raw", "--ipfs-connect",
                 "--ipfs-serve-path", "--ipfs-swarm-addrs", "--ipfs-swarm-key",
                 "--private-internal-ipfs"):
        assert flag in text


def test_classic_verbs_are_their_job_twins() -> None:
    ctx = click.Context(cli)
    job_group = cli.get_command(ctx, "job")
    assert isinstance(job_group, click.Group)
    twins = {"create": "run", "get": "get", "list": "list", "cancel": "stop", "logs": "logs"}
    for classic, twin in twins.items():
        command = job_group.get_command(ctx, twin)
        assert command is not None
        assert cli.get_command(ctx, classic) is command
        assert CLASSIC_TWINS[classic].load() is command
    assert "describe" in cli.list_commands(ctx) and "[default: yaml]" in _help("describe")


def test_version_without_a_server_prints_the_client_and_a_note() -> None:
    result = CliRunner().invoke(cli, ["--api-port", "1", "version"])
    assert result.exit_code == 0, result.output
    assert "CLIENT" in result.stdout and "SERVER" not in result.stdout
    assert result.stderr.startswith("No server version: cannot reach the Bacalhau API")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("value", "seconds"),
                         [("300", 300), ("5m", 300), ("1m30s", 90), ("2h", 7200), ("90s", 90)])
def test_download_timeout_takes_seconds_or_a_duration(value: str, seconds: int) -> None:
    assert Seconds().convert(value, None, None) == seconds


@pytest.mark.parametrize("value", ["5 minutes", "0", "-3", "m5", "500ms"])
def test_download_timeout_refuses_what_is_not_a_duration(value: str) -> None:
    with pytest.raises(click.BadParameter):
        Seconds().convert(value, None, None)
