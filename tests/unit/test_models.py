"""The wire model: exact JSON names, Bacalhau's quirks, parsing and validation messages."""

from __future__ import annotations

import pytest

from bacalhau.errors import ValidationError
from bacalhau.models import (
    Event,
    Execution,
    ExecutionState,
    ExecutionStateType,
    Job,
    NodeInfo,
    NodeState,
    Resources,
    ResourcesConfig,
    RunCommandResult,
    SpecConfig,
)
from bacalhau.models.resources import parse_bytes, parse_cpu
from bacalhau.models.spec import LabelSelectorRequirement, matches_selector, parse_selector
from bacalhau.models.timeutil import parse_rfc3339, rfc3339

pytestmark = pytest.mark.unit


def wasm_job(**overrides):
    job = {
        "Type": "batch",
        "Tasks": [{
            "Name": "main",
            "Engine": {"Type": "wasm", "Params": {"EntryModule": "/wasm/main.wasm"}},
            "Publisher": {"Type": "local"},
            "ResultPaths": [{"Name": "outputs", "Path": "/outputs"}],
        }],
    }
    job.update(overrides)
    return job


@pytest.mark.parametrize(("text", "cores"), [("500m", 0.5), ("2", 2.0), ("0.25", 0.25),
                                             ("1500M", 1.5), (" 100m ", 0.1), ("", 0.0)])
def test_cpu_quantities(text, cores):
    assert parse_cpu(text) == pytest.approx(cores)


@pytest.mark.parametrize(("text", "size"), [
    ("512Mb", 512_000_000), ("512MB", 512_000_000), ("1Gi", 2**30), ("1GiB", 2**30),
    ("2gb", 2_000_000_000), ("1024", 1024), ("1.5Gb", 1_500_000_000), ("10 KiB", 10 * 1024),
])
def test_byte_sizes(text, size):
    assert parse_bytes(text) == size


@pytest.mark.parametrize("bad", ["abc", "5x", "-1", "1.2.3"])
def test_bad_resource_strings_name_the_field(bad):
    with pytest.raises(ValidationError, match=r"Tasks\[0\]\.Resources\.Memory"):
        ResourcesConfig(memory=bad).to_resources("Tasks[0].Resources")


def test_count_defaults_to_one_only_when_absent():
    assert Job.from_dict(wasm_job()).count == 1
    assert Job.from_dict(wasm_job(Count=0)).count == 0
    ops = Job.from_dict(wasm_job(Type="ops"))
    ops.normalize()
    assert ops.count == 0


def test_decoding_is_case_insensitive_and_encoding_is_exact():
    job = Job.from_dict({"type": "batch", "tasks": [{"name": "main", "engine": {
        "type": "WASM", "params": {"entrymodule": "/m.wasm"}}, "resources": {"cpu": "1"}}]})
    job.normalize()
    out = job.to_dict()
    assert out["Tasks"][0]["Engine"]["Type"] == "wasm"
    assert out["Tasks"][0]["Resources"] == {"CPU": "1"}
    assert job.task.engine.param("EntryModule") == "/m.wasm"
    assert set(out) >= {"ID", "Name", "Namespace", "Type", "Count", "State", "CreateTime"}


def test_validation_lists_every_problem_with_its_field():
    job = Job.from_dict({"Type": "batch", "Tasks": [{
        "Name": "main", "Engine": {"Type": "wasm"},
        "Env": {"lower": "x", "BACALHAU_X": "y", "EMPTY": ""},
        "ResultPaths": [{"Name": "out", "Path": "relative"}],
        "Resources": {"CPU": "lots"},
        "Timeouts": {"ExecutionTimeout": 10, "QueueTimeout": 10, "TotalTimeout": 5},
    }]})
    job.normalize()
    with pytest.raises(ValidationError) as info:
        job.validate()
    message = str(info.value)
    for expected in ['Env: name "lower"', '"BACALHAU_X" is reserved', 'value of "EMPTY"',
                     'Path: "relative" must be an absolute path', "Resources.CPU",
                     "result paths need a publisher", "must not exceed TotalTimeout"]:
        assert expected in message


def test_unknown_job_type_and_missing_tasks():
    job = Job.from_dict({"Type": "cron"})
    job.normalize()
    with pytest.raises(ValidationError, match=r'unknown job type "cron".*a job needs one task'):
        job.validate()


def test_wrong_json_types_name_the_field():
    with pytest.raises(ValidationError, match=r"Job\.Tasks\[0\]\.Env\.A: expected a string"):
        Job.from_dict({"Type": "batch", "Tasks": [{"Name": "t", "Env": {"A": 1}}]})
    with pytest.raises(ValidationError, match=r"Job\.Count: expected an integer"):
        Job.from_dict({"Type": "batch", "Count": "many"})


def test_execution_states_are_integers_and_stderr_key_is_lower_case():
    ex = Execution(id="e-1", job_id="j-1", compute_state=ExecutionState(
        ExecutionStateType.COMPLETED), run_output=RunCommandResult(stdout="a", stderr="b"))
    out = ex.to_dict()
    assert out["ComputeState"] == {"StateType": 9}
    assert out["RunOutput"]["stderr"] == "b" and "Stderr" not in out["RunOutput"]
    back = Execution.from_dict(out)
    assert back.compute_state_type is ExecutionStateType.COMPLETED
    assert back.run_output.stderr == "b"
    assert back.is_terminal()


def test_node_info_quirks():
    info = NodeInfo(node_id="n-1")
    info.compute_node_info.queue_used_capacity = Resources(cpu=1)
    info.compute_node_info.address = "x"
    cni = info.to_dict()["ComputeNodeInfo"]
    assert cni["QueueCapacity"] == {"CPU": 1} and cni["address"] == "x"
    state = NodeState(info=info).to_dict()
    assert state["Connection"] == state["ConnectionState"]["Status"] == "DISCONNECTED"
    assert NodeInfo.from_dict(info.to_dict()).compute_node_info.queue_used_capacity.cpu == 1


def test_selector_parsing_and_matching():
    reqs = parse_selector("env=prod, tier in (a, b), !spot, zone")
    assert [(r.key, r.operator) for r in reqs] == [
        ("env", "="), ("tier", "in"), ("spot", "!"), ("zone", "exists")]
    assert matches_selector({"env": "prod", "tier": "b", "zone": "1"}, reqs)
    assert not matches_selector({"env": "prod", "tier": "b", "zone": "1", "spot": "y"}, reqs)
    assert LabelSelectorRequirement("k", "in", []).problems("C[0]") == [
        "C[0].Values: operator in needs at least one value"]


def test_rfc3339_round_trip():
    ns = 1_700_000_000_123_456_789
    assert parse_rfc3339(rfc3339(ns)) == ns
    assert Event.new("Topic", "msg", NodeID="n-1").details == {"NodeID": "n-1"}


def test_legacy_wasm_entry_module_becomes_an_input():
    from bacalhau.orchestrator.transforms import legacy_wasm_modules

    job = Job.from_dict({"Type": "batch", "Tasks": [{"Name": "t", "Engine": {"Type": "wasm",
        "Params": {"EntryModule": {"Source": {"Type": "inline", "Params": {"URL": "data:,x"}}},
                   "ImportModules": [{"Source": {"Type": "inline", "Params": {"URL": "data:,y"}},
                                      "Target": "/lib/y.wasm"}],
                   "EntryPoint": "main"}}}]})
    warnings = legacy_wasm_modules(job)
    params = job.task.engine.params
    assert params == {"EntryModule": "/wasm/entry.wasm", "ImportModules": ["/lib/y.wasm"],
                      "Entrypoint": "main"}
    assert [i.target for i in job.task.input_sources] == ["/wasm/entry.wasm", "/lib/y.wasm"]
    assert len(warnings) == 1 and "deprecated" in warnings[0]


def _fully_populated_execution() -> Execution:
    job = Job.from_dict(wasm_job(
        Name="clone-me", Priority=3, Meta={"a": "1"}, Labels={"env": "prod"},
        Constraints=[{"Key": "zone", "Operator": "in", "Values": ["a", "b"]}],
        State={"StateType": "Running", "Message": "m", "Details": {"k": "v"}},
        Tasks=[{
            "Name": "main",
            "Engine": {"Type": "wasm", "Params": {"EntryModule": "/wasm/main.wasm",
                                                  "Parameters": ["x", {"deep": [1, 2.5]}]}},
            "Publisher": {"Type": "local", "Params": {"Opt": True}},
            "Env": {"FOO": "bar"}, "Meta": {"m": "n"},
            "InputSources": [{"Source": {"Type": "inline", "Params": {"URL": "data:,x"}},
                              "Alias": "in", "Target": "/inputs/x"}],
            "ResultPaths": [{"Name": "outputs", "Path": "/outputs"}],
            "Resources": {"CPU": "500m", "Memory": "1Gb"},
            "Network": {"Type": "HTTP", "Domains": ["example.com"],
                        "Ports": [{"Name": "http", "Static": 80, "Target": 8080}]},
            "Timeouts": {"ExecutionTimeout": 5, "QueueTimeout": 6, "TotalTimeout": 30},
        }],
    ))
    return Execution(
        id="e-1", eval_id="v-1", name="clone-me", node_id="n-1", job_id=job.id, job=job,
        job_version=2, allocated_resources={"main": Resources(0.5, 10, 20, 1)},
        desired_state=ExecutionState(1, "go", {"a": "b"}),
        compute_state=ExecutionState(ExecutionStateType.RUNNING, "run"),
        published_result=SpecConfig("urlDownload", {"URL": "http://x"}),
        run_output=RunCommandResult(stdout="out", exit_code=2),
        previous_execution="e-0", partition_index=1, revision=4, create_time=1, modify_time=2)


def test_copies_equal_deepcopies_and_share_nothing_mutable():
    import copy as copy_module

    execution = _fully_populated_execution()
    job = execution.job
    assert job is not None
    assert job.copy() == copy_module.deepcopy(job)
    assert job.copy().to_dict() == job.to_dict()
    dup = execution.copy()
    assert dup == copy_module.deepcopy(execution)
    assert execution.copy(with_job=False).job is None
    assert execution.job is job
    # mutate every container of the copy: the original must not change
    before = execution.to_dict()
    dup.job.meta["x"] = "y"  # type: ignore[union-attr]
    dup.job.tasks[0].engine.params["Parameters"][1]["deep"].append(3)  # type: ignore[union-attr]
    dup.job.tasks[0].input_sources[0].source.params["URL"] = "data:,y"  # type: ignore[union-attr]
    dup.job.tasks[0].network.ports[0].static = 1  # type: ignore[union-attr]
    dup.job.constraints[0].values.append("c")  # type: ignore[union-attr]
    dup.job.state.details["k"] = "w"  # type: ignore[union-attr]
    dup.allocated_resources["main"].cpu = 9
    dup.desired_state.details["a"] = "c"
    dup.published_result.params["URL"] = "http://y"
    dup.run_output.stdout = "changed"  # type: ignore[union-attr]
    assert execution.to_dict() == before


def test_short_ids_are_prefixes_that_tell_nodes_apart():
    from bacalhau.models.ids import short_id

    assert short_id("j-1a2b3c4d-0000-4000-8000-000000000000") == "j-1a2b3c4d"
    peer = "12D3KooWAyX2LDJ1hzLvDq4zDvoobBHVzA34XF6UedpuZC6xtixp"
    assert short_id(peer) == "12D3KooWAyX2LDJ1" and peer.startswith(short_id(peer))


def test_hand_written_copies_know_every_field():
    """Tripwire: `copy`/`clone` list the fields one by one (deepcopy costs ten times more);
    a new field must be added there too, then here."""
    import dataclasses

    from bacalhau.models import (
        GPU,
        InputSource,
        JobState,
        LabelSelectorRequirement,
        NetworkConfig,
        PortMapping,
        ResultPath,
        Task,
        TimeoutConfig,
    )

    expected = {
        Job: "id name namespace type priority count constraints meta labels tasks state "
             "version revision create_time modify_time",
        Task: "name engine publisher env meta input_sources result_paths resources network "
              "timeouts",
        Execution: "id namespace eval_id name node_id job_id job job_version "
                   "allocated_resources desired_state compute_state published_result "
                   "run_output previous_execution next_execution followup_eval_id "
                   "partition_index revision create_time modify_time",
        SpecConfig: "type params", InputSource: "source alias target", ResultPath: "name path",
        PortMapping: "name static target host_network", NetworkConfig: "type domains ports",
        TimeoutConfig: "execution_timeout queue_timeout total_timeout",
        LabelSelectorRequirement: "key operator values", JobState: "state_type message details",
        ExecutionState: "state_type message details",
        RunCommandResult: "stdout stdout_truncated stderr stderr_truncated exit_code error_msg",
        Resources: "cpu memory disk gpu gpus", GPU: "index name vendor memory pci_address",
        ResourcesConfig: "cpu memory disk gpu",
    }
    for cls, names in expected.items():
        assert [f.name for f in dataclasses.fields(cls)] == names.split(), cls.__name__
