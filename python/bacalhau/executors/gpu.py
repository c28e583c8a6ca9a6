"""GPUs: detection on the host, node labels, and what a container needs to use some of them
(reference §6).

Detection runs the vendors' own tools and parses what they print; a missing tool means no
GPUs of that vendor (logged at debug), a tool that fails or prints something unexpected is
logged and ignored:
- NVIDIA: `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits`
  (one CSV line per GPU; memory in MiB);
- AMD: `rocm-smi --showproductname --showbus --showmeminfo vram --json` (one `cardN` object
  per GPU with "Card series", "PCI Bus", "VRAM Total Memory (B)");
- Intel: `xpu-smi discovery --json` (a `device_list` with `device_id`, `device_name`,
  `pci_bdf_address`), then `xpu-smi discovery --json --device <id>` per device for its
  `memory_physical_size_byte`.
`GPU.memory` is in MiB, as in Bacalhau. GPUs are numbered per vendor by their tools; on a
host with GPUs of several vendors the indices are renumbered 0..n-1 in detection order
(NVIDIA, AMD, Intel), so that `GPU-<i>` labels and allocation use one index space, and the
vendor's own index is kept for the device request (`vendor_index`).

Devices for Docker (`docker_devices`): NVIDIA GPUs are asked for with one
`DeviceRequest(device_ids=[vendor indices], capabilities=[["gpu"]])` (needs the NVIDIA
container toolkit on the host); AMD GPUs are `/dev/kfd` plus the card and render nodes of each
GPU, found from its PCI address under `/dev/dri/by-path/`; Intel GPUs are their card and render
nodes found the same way (all of `/dev/dri` when the PCI address is unknown).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bacalhau.models import GPU

log = logging.getLogger(__name__)

VENDOR_NVIDIA = "NVIDIA"
VENDOR_AMD = "AMD/ATI"
VENDOR_INTEL = "Intel"

NVIDIA_SMI = ["nvidia-smi", "--query-gpu=index,name,memory.total",
              "--format=csv,noheader,nounits"]
ROCM_SMI = ["rocm-smi", "--showproductname", "--showbus", "--showmeminfo", "vram", "--json"]
XPU_SMI_LIST = ["xpu-smi", "discovery", "--json"]
TOOL_TIMEOUT_S = 10.0
MIB = 2**20

# (argv) -> stdout; raises FileNotFoundError when the tool is missing, CalledProcessError or
# TimeoutExpired when it fails.
ToolRunner = Callable[[list[str]], str]


class GPUParseError(ValueError):
    """A GPU tool printed something this module does not understand."""


def run_tool(argv: list[str]) -> str:
    """Run a detection tool and return its stdout (see `ToolRunner`)."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S,
                          check=True)
    return done.stdout


# ----- parsers (pure: tests feed them recorded outputs) --------------------------------------

def parse_nvidia_smi(text: str) -> list[GPU]:
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3:
            raise GPUParseError(f"nvidia-smi: expected index, name, memory in {line!r}")
        # a name could hold a comma: index first, memory last, the name in between
        index, memory, name = parts[0], parts[-1], ", ".join(parts[1:-1])
        try:
            gpus.append(GPU(index=int(index), name=name, vendor=VENDOR_NVIDIA,
                            memory=int(float(memory))))
        except ValueError as exc:
            raise GPUParseError(f"nvidia-smi: bad index or memory in {line!r}") from exc
    return gpus


def parse_rocm_smi(text: str) -> list[GPU]:
    try:
        data = json.loads(text or "{}")
    except ValueError as exc:
        raise GPUParseError(f"rocm-smi: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise GPUParseError("rocm-smi: expected a JSON object of cards")
    gpus = []
    for key, card in data.items():
        match = re.fullmatch(r"card(\d+)", str(key))
        if match is None or not isinstance(card, dict):
            continue  # e.g. "system" entries of newer versions
        try:
            memory = int(card.get("VRAM Total Memory (B)", 0)) // MIB
        except (TypeError, ValueError) as exc:
            raise GPUParseError(f"rocm-smi: bad VRAM total of {key}") from exc
        name = str(card.get("Card series") or card.get("Card Series") or
                   card.get("Card model") or "AMD GPU").strip()
        gpus.append(GPU(index=int(match.group(1)), name=name, vendor=VENDOR_AMD,
                        memory=memory, pci_address=str(card.get("PCI Bus", "")).lower()))
    return sorted(gpus, key=lambda g: g.index)


def parse_xpu_smi_list(text: str) -> list[GPU]:
    try:
        data = json.loads(text or "{}")
    except ValueError as exc:
        raise GPUParseError(f"xpu-smi: not JSON: {exc}") from exc
    devices = data.get("device_list", []) if isinstance(data, dict) else None
    if not isinstance(devices, list):
        raise GPUParseError("xpu-smi: expected a device_list")
    gpus = []
    for device in devices:
        if not isinstance(device, dict):
            continue
        try:
            index = int(device.get("device_id", len(gpus)))
        except (TypeError, ValueError) as exc:
            raise GPUParseError("xpu-smi: bad device_id") from exc
        gpus.append(GPU(index=index, name=str(device.get("device_name", "Intel GPU")).strip(),
                        vendor=VENDOR_INTEL,
                        pci_address=str(device.get("pci_bdf_address", "")).lower()))
    return gpus


def parse_xpu_smi_device(text: str) -> int:
    """Memory in MiB from `xpu-smi discovery --json --device <id>` (0 when not given)."""
    try:
        data = json.loads(text or "{}")
        return int(data.get("memory_physical_size_byte", 0)) // MIB
    except (ValueError, TypeError, AttributeError) as exc:
        raise GPUParseError(f"xpu-smi: bad device details: {exc}") from exc


# ----- detection ------------------------------------------------------------------------------

@dataclass(slots=True)
class DetectedGPUs:
    """What detection found: GPUs in one index space plus each one's vendor index."""

    gpus: list[GPU] = field(default_factory=list)
    vendor_index: dict[int, int] = field(default_factory=dict)  # our index -> tool's index


def _tool(run: ToolRunner, argv: list[str]) -> str | None:
    try:
        return run(argv)
    except FileNotFoundError:
        log.debug("%s not found: no GPUs of that vendor", argv[0])
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        log.warning("%s failed, its GPUs are ignored: %s", argv[0], exc)
    return None


def _detect_vendor(run: ToolRunner, vendor: str) -> list[GPU]:
    try:
        if vendor == VENDOR_NVIDIA:
            text = _tool(run, NVIDIA_SMI)
            return parse_nvidia_smi(text) if text is not None else []
        if vendor == VENDOR_AMD:
            text = _tool(run, ROCM_SMI)
            return parse_rocm_smi(text) if text is not None else []
        text = _tool(run, XPU_SMI_LIST)
        if text is None:
            return []
        gpus = parse_xpu_smi_list(text)
        for gpu in gpus:
            details = _tool(run, [*XPU_SMI_LIST, "--device", str(gpu.index)])
            if details is not None:
                gpu.memory = parse_xpu_smi_device(details)
        return gpus
    except GPUParseError as exc:
        log.warning("%s GPUs are ignored: %s", vendor, exc)
        return []


def detect_gpus(run: ToolRunner = run_tool) -> DetectedGPUs:
    """All GPUs of the host (see the module doc); `run` is injectable for tests."""
    found = DetectedGPUs()
    for vendor in (VENDOR_NVIDIA, VENDOR_AMD, VENDOR_INTEL):
        for gpu in _detect_vendor(run, vendor):
            index = len(found.gpus)
            found.vendor_index[index] = gpu.index
            found.gpus.append(GPU(index=index, name=gpu.name, vendor=gpu.vendor,
                                  memory=gpu.memory, pci_address=gpu.pci_address))
    return found


_HOST: DetectedGPUs | None = None
_HOST_LOCK = threading.Lock()


def host_gpus() -> DetectedGPUs:
    """This host's GPUs, detected once per process (the tools are slow to start, and the
    hardware does not change under a running node). `node.py` calls it on a worker thread
    before building the compute node, so later calls on the event loop only read the cache."""
    global _HOST
    with _HOST_LOCK:
        if _HOST is None:
            _HOST = detect_gpus()
            if _HOST.gpus:
                log.info("GPUs: %s", ", ".join(f"{g.index}: {g.vendor} {g.name} {g.memory} MiB"
                                               for g in _HOST.gpus))
        return _HOST


def gpu_labels(gpus: Iterable[GPU]) -> dict[str, str]:
    """Node labels `GPU-<i>` = name (spaces -> '-') and `GPU-<i>-Memory` = `<MiB>-MiB`."""
    labels = {}
    for gpu in gpus:
        labels[f"GPU-{gpu.index}"] = re.sub(r"\s+", "-", gpu.name.strip())
        labels[f"GPU-{gpu.index}-Memory"] = f"{gpu.memory}-MiB"
    return labels


# ----- container devices ------------------------------------------------------------------------

@dataclass(slots=True)
class DockerDevices:
    """Keyword arguments for `docker.types.HostConfig` that give a container its GPUs."""

    device_requests: list[dict[str, Any]] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)  # "host:container:rwm"

    def host_config_kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.device_requests:
            out["device_requests"] = self.device_requests
        if self.devices:
            out["devices"] = self.devices
        return out


class UnsupportedGPUError(ValueError):
    pass


def dri_nodes(pci_address: str, resolve: Callable[[str], str] = os.path.realpath) -> list[str]:
    """The card and render nodes (`/dev/dri/cardN`, `/dev/dri/renderDN`) of the GPU at a PCI
    address, resolved from the `/dev/dri/by-path/pci-<addr>-{card,render}` links."""
    return [resolve(f"/dev/dri/by-path/pci-{pci_address}-{kind}") for kind in ("card", "render")]


def docker_devices(gpus: list[GPU], vendor_index: dict[int, int] | None = None,
                   resolve: Callable[[str], str] = os.path.realpath) -> DockerDevices:
    """What a container needs to use exactly `gpus` (see the module doc). `resolve` follows
    the by-path links (injectable: tests have no /dev/dri)."""
    vendor_index = vendor_index or {}
    out = DockerDevices()
    nvidia = [g for g in gpus if g.vendor == VENDOR_NVIDIA]
    if nvidia:
        from docker.types import DeviceRequest

        out.device_requests.append(DeviceRequest(
            device_ids=[str(vendor_index.get(g.index, g.index)) for g in nvidia],
            capabilities=[["gpu"]]))
    seen: set[str] = set()

    def add(path: str) -> None:
        if path not in seen:
            seen.add(path)
            out.devices.append(f"{path}:{path}:rwm")

    for gpu in gpus:
        if gpu.vendor == VENDOR_NVIDIA:
            continue
        if gpu.vendor == VENDOR_AMD:
            add("/dev/kfd")
        elif gpu.vendor != VENDOR_INTEL:
            raise UnsupportedGPUError(
                f"job requires GPU from unsupported vendor {gpu.vendor!r}")
        if gpu.pci_address:
            for node in dri_nodes(gpu.pci_address, resolve):
                add(node)
        else:
            add("/dev/dri")
    return out
