"""Devices: which one a run uses (CPU, a GPU, one GPU per xdist worker) and what the card is."""

from __future__ import annotations

from typing import Any

from pytest_llmeff.errors import OptionError


def resolve_device(requested: str, worker: int | None = None) -> tuple[str, dict[str, Any] | None]:
    """``auto`` / ``cpu`` / ``cuda[:N]`` → the device to use and, on GPU, facts about the card.

    Under pytest-xdist (``worker`` = the worker's number) ``auto`` and ``cuda`` give each worker its
    own GPU, round robin: worker gw3 on a 2-GPU machine gets cuda:1.
    """
    if requested == "cpu":
        return "cpu", None
    import torch

    if not torch.cuda.is_available():
        if requested == "auto":
            return "cpu", None
        built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA support (a CPU build)"
        raise OptionError(f"--llmeff-device {requested}: no CUDA device is visible "
                          f"(torch {torch.__version__} has {built}); use --llmeff-device cpu or auto")
    if requested in ("auto", "cuda"):
        device = f"cuda:{(worker or 0) % torch.cuda.device_count()}"
    else:
        device = requested
    index = int(device.split(":")[1])
    if index >= torch.cuda.device_count():
        raise OptionError(f"--llmeff-device {requested}: only {torch.cuda.device_count()} CUDA device(s)")
    # Kernels, streams and plain torch.cuda.synchronize() calls follow the *current* device: make
    # it the run's one, or an xdist worker on cuda:1 would time and synchronise cuda:0.
    torch.cuda.set_device(index)
    props = torch.cuda.get_device_properties(index)
    info: dict[str, Any] = {"name": props.name, "memory_bytes": int(props.total_memory),
                            "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda}
    info.update(_nvml_facts(index))
    return device, info


def nvml_handle(index: int) -> Any:
    """The NVML handle of torch's ``cuda:<index>`` (``nvmlInit`` already called).

    NVML numbers every GPU in the machine; torch numbers only the visible ones, in
    ``CUDA_DEVICE_ORDER``. With ``CUDA_VISIBLE_DEVICES=3`` torch's cuda:0 is NVML's device 3, so the
    card is matched by its UUID (torch's own index mapping as the fallback).
    """
    import pynvml
    import torch

    try:
        uuid = str(torch.cuda.get_device_properties(index).uuid)
        return pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
    except Exception:  # an older torch without .uuid, or a UUID form NVML does not take
        return pynvml.nvmlDeviceGetHandleByIndex(torch.cuda._get_nvml_device_index(index))


def _nvml_facts(index: int) -> dict[str, Any]:
    try:
        import pynvml

        pynvml.nvmlInit()
        h = nvml_handle(index)
        return {"uuid": pynvml.nvmlDeviceGetUUID(h), "driver": pynvml.nvmlSystemGetDriverVersion(),
                "power_limit_w": pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1000}
    except Exception:  # NVML absent or restricted: the card's name from torch is still recorded
        return {}
