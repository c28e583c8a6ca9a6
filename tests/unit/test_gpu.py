"""GPU detection, labels, capacity and allocation.

These machines have no GPU: detection is tested with the tools' outputs kept in
`tests/data/gpu/` (fed through an injected tool runner), and allocation with GPUs handed to the
capacity code directly. What a container gets for its GPUs is in test_docker_executor.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bacalhau.compute.capacity import CapacityTracker, allocated_capacity, probe_totals
from bacalhau.compute.service import ComputeNode
from bacalhau.config import Config
from bacalhau.executors import gpu
from bacalhau.models import (
    GPU,
    Execution,
    ExecutionState,
    ExecutionStateType,
    Job,
    Resources,
    SpecConfig,
    Task,
)
from bacalhau.models.ids import new_execution_id, new_job_id
from bacalhau.store.executionstore import ExecutionStore
from bacalhau.transport import InProcessNetwork
from tests.unit.test_compute_buffer import BlockingExecutor, eventually

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent.parent / "data" / "gpu"


def recorded(**outputs: str | BaseException):
    """A tool runner answering from recorded outputs; tools not given are 'not installed'."""
    calls: list[list[str]] = []

    def run(argv: list[str]) -> str:
        calls.append(argv)
        key = " ".join(argv)
        for name, value in outputs.items():
            if key == name:
                if isinstance(value, BaseException):
                    raise value
                return value
        raise FileNotFoundError(argv[0])

    run.calls = calls  # type: ignore[attr-defined]
    return run


NVIDIA = " ".join(gpu.NVIDIA_SMI)
ROCM = " ".join(gpu.ROCM_SMI)
XPU = " ".join(gpu.XPU_SMI_LIST)


def test_nvidia_smi_output() -> None:
    gpus = gpu.parse_nvidia_smi((DATA / "nvidia-smi.csv").read_text())
    assert gpus == [
        GPU(0, "NVIDIA H100 80GB HBM3", gpu.VENDOR_NVIDIA, 81559, ""),
        GPU(1, "NVIDIA H100 80GB HBM3", gpu.VENDOR_NVIDIA, 81559, ""),
        GPU(2, "Tesla T4", gpu.VENDOR_NVIDIA, 15360, ""),
    ]
    with pytest.raises(gpu.GPUParseError):
        gpu.parse_nvidia_smi("0, broken\n")


def test_rocm_smi_output() -> None:
    gpus = gpu.parse_rocm_smi((DATA / "rocm-smi.json").read_text())
    assert gpus == [
        GPU(0, "Instinct MI210", gpu.VENDOR_AMD, 65520, "0000:c3:00.0"),
        GPU(1, "Instinct MI210", gpu.VENDOR_AMD, 65520, "0000:83:00.0"),
    ]
    assert gpu.parse_rocm_smi("{}") == []


def test_xpu_smi_outputs() -> None:
    listed = gpu.parse_xpu_smi_list((DATA / "xpu-smi-discovery.json").read_text())
    assert listed == [GPU(0, "Intel(R) Data Center GPU Flex 170", gpu.VENDOR_INTEL, 0,
                          "0000:4d:00.0")]
    assert gpu.parse_xpu_smi_device(
        (DATA / "xpu-smi-discovery-device-0.json").read_text()) == 16384


def test_detection_of_every_vendor_in_one_index_space() -> None:
    run = recorded(**{
        NVIDIA: (DATA / "nvidia-smi.csv").read_text(),
        ROCM: (DATA / "rocm-smi.json").read_text(),
        XPU: (DATA / "xpu-smi-discovery.json").read_text(),
        XPU + " --device 0": (DATA / "xpu-smi-discovery-device-0.json").read_text(),
    })
    found = gpu.detect_gpus(run)
    assert [(g.index, g.vendor) for g in found.gpus] == [
        (0, "NVIDIA"), (1, "NVIDIA"), (2, "NVIDIA"), (3, "AMD/ATI"), (4, "AMD/ATI"),
        (5, "Intel")]
    assert found.vendor_index == {0: 0, 1: 1, 2: 2, 3: 0, 4: 1, 5: 0}
    assert found.gpus[5].memory == 16384
    assert gpu.gpu_labels(found.gpus[2:4]) == {
        "GPU-2": "Tesla-T4", "GPU-2-Memory": "15360-MiB",
        "GPU-3": "Instinct-MI210", "GPU-3-Memory": "65520-MiB",
    }


def test_missing_or_failing_tools_mean_no_gpus() -> None:
    assert gpu.detect_gpus(recorded()).gpus == []
    failing = recorded(**{
        NVIDIA: subprocess.CalledProcessError(9, "nvidia-smi", "NVIDIA-SMI has failed"),
        ROCM: "not json",
    })
    assert gpu.detect_gpus(failing).gpus == []


def test_capacity_lists_gpus_and_allocated_count_keeps_the_first() -> None:
    gpus = gpu.parse_nvidia_smi((DATA / "nvidia-smi.csv").read_text())
    totals = probe_totals(Path("/"), gpus=gpus)
    assert totals.gpu == 3 and [g.index for g in totals.gpus] == [0, 1, 2]
    config = Config()
    assert allocated_capacity(config, totals).gpu == 3
    config.set("Compute.AllocatedCapacity.GPU", "2")
    allocated = allocated_capacity(config, totals)
    assert allocated.gpu == 2 and [g.index for g in allocated.gpus] == [0, 1]
    assert allocated.to_dict()["GPUs"][1] == {
        "Index": 1, "Name": "NVIDIA H100 80GB HBM3", "Vendor": "NVIDIA", "Memory": 81559,
        "PCIAddress": ""}


def test_tracker_never_hands_one_gpu_to_two_executions() -> None:
    gpus = [GPU(i, "T4", gpu.VENDOR_NVIDIA, 15360) for i in range(3)]
    tracker = CapacityTracker(Resources(cpu=8, memory=10**10, gpu=3, gpus=gpus))
    one, two = Resources(cpu=1, gpu=1), Resources(cpu=1, gpu=2)
    assert tracker.try_allocate("e-a", one)
    assert tracker.try_allocate("e-b", two)
    held = {e: [g.index for g in tracker.gpus_of(e)] for e in ("e-a", "e-b")}
    assert held == {"e-a": [0], "e-b": [1, 2]}
    assert not tracker.try_allocate("e-c", one)  # all three are in use
    assert tracker.available().gpu == 0 and tracker.available().gpus == []
    tracker.release("e-a")
    assert [g.index for g in tracker.available().gpus] == [0]
    assert tracker.try_allocate("e-c", one)
    assert [g.index for g in tracker.gpus_of("e-c")] == [0]
    assert tracker.gpus_of("e-a") == []
    assert tracker.try_allocate("e-cpu", Resources(cpu=1))
    assert tracker.gpus_of("e-cpu") == []


def test_devices_for_containers() -> None:
    """What a container gets for its GPUs (the engine request is asserted in
    test_docker_executor.py); /dev/dri/by-path links are resolved by a stand-in."""
    links = {
        "/dev/dri/by-path/pci-0000:83:00.0-card": "/dev/dri/card2",
        "/dev/dri/by-path/pci-0000:83:00.0-render": "/dev/dri/renderD129",
        "/dev/dri/by-path/pci-0000:4d:00.0-card": "/dev/dri/card1",
        "/dev/dri/by-path/pci-0000:4d:00.0-render": "/dev/dri/renderD128",
    }
    nvidia = gpu.docker_devices([GPU(1, "T4", gpu.VENDOR_NVIDIA), GPU(3, "T4", "NVIDIA")],
                                {1: 1, 3: 3}, links.__getitem__)
    assert nvidia.host_config_kwargs() == {"device_requests": [{
        "Driver": "", "Count": 0, "DeviceIDs": ["1", "3"], "Capabilities": [["gpu"]],
        "Options": {}}]}
    amd = gpu.docker_devices([GPU(4, "MI210", gpu.VENDOR_AMD, 0, "0000:83:00.0")],
                             {4: 1}, links.__getitem__)
    assert amd.host_config_kwargs() == {"devices": [
        "/dev/kfd:/dev/kfd:rwm", "/dev/dri/card2:/dev/dri/card2:rwm",
        "/dev/dri/renderD129:/dev/dri/renderD129:rwm"]}
    intel = gpu.docker_devices([GPU(5, "Flex", gpu.VENDOR_INTEL, 0, "0000:4d:00.0"),
                                GPU(6, "Arc", gpu.VENDOR_INTEL)], None, links.__getitem__)
    assert intel.devices == ["/dev/dri/card1:/dev/dri/card1:rwm",
                             "/dev/dri/renderD128:/dev/dri/renderD128:rwm",
                             "/dev/dri:/dev/dri:rwm"]
    with pytest.raises(gpu.UnsupportedGPUError, match="unsupported vendor"):
        gpu.docker_devices([GPU(0, "x", "Matrox")])


async def test_runs_get_distinct_gpus_and_nodes_label_them(tmp_path: Path, monkeypatch) -> None:
    """Buffer -> runner -> executor: each run's RunRequest names the GPUs it holds; a third
    GPU job waits for one to come free. The node's labels list the GPUs."""

    gpus = [GPU(0, "Tesla T4", gpu.VENDOR_NVIDIA, 15360), GPU(1, "Tesla T4", "NVIDIA", 15360)]
    monkeypatch.setattr(gpu, "_HOST", gpu.DetectedGPUs(gpus, {0: 0, 1: 1}))
    store = ExecutionStore(tmp_path / "compute" / "executions.db")
    transport = InProcessNetwork().transport("n-gpu")
    await transport.start()
    executor = BlockingExecutor()
    node = ComputeNode(Config(), store, transport, executors={"test": executor}, storages={},
                       publishers={}, node_id="n-gpu", data_dir=tmp_path)
    try:
        labels = node.node_info().labels
        assert labels["GPU-0"] == "Tesla-T4" and labels["GPU-1-Memory"] == "15360-MiB"
        assert node.max_capacity.gpu == 2

        def add() -> Execution:
            job = Job(id=new_job_id(), type="batch", tasks=[Task(
                name="main", engine=SpecConfig("test"))])
            ex = Execution(id=new_execution_id(), job_id=job.id, job=job,
                           allocated_resources={"main": Resources(cpu=0.1, memory=1000,
                                                                  gpu=1)},
                           compute_state=ExecutionState(int(ExecutionStateType.BID_ACCEPTED)))
            store.create(ex, "n-requester")
            return ex

        runs = [add() for _ in range(3)]
        for ex in runs:
            node.buffer.enqueue(ex)
        await eventually(lambda: len(executor.started) == 2)
        held = [[g.index for g in executor.requests[e].resources.gpus]
                for e in executor.started]
        assert sorted(held) == [[0], [1]]
        assert node.buffer.queued_count == 1
        # the execution records the GPUs it holds
        first = executor.started[0]
        recorded_gpus = store.require(first).execution.allocated_resources["main"].gpus
        assert [g.index for g in recorded_gpus] == held[0]
        executor.release[first].set()
        await eventually(lambda: len(executor.started) == 3)
        assert [g.index for g in executor.requests[runs[2].id].resources.gpus] == held[0]
        for ex in runs:
            executor.release[ex.id].set()
        await eventually(lambda: node.buffer.running_count == 0)
        assert [g.index for g in node.tracker.available().gpus] == [0, 1]
    finally:
        await node.stop()
        await transport.close()
        store.close()
