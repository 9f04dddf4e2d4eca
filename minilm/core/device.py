"""Which hardware we run on: device choice and the environment check chapter 00 shows."""

from __future__ import annotations

import os
import platform
import sys


def best_device() -> str:
    """'cuda' if a CUDA GPU is usable, else 'mps' on Apple silicon, else 'cpu'.

    >>> best_device() in ("cuda", "mps", "cpu")
    True
    """
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_device(device: str) -> str:
    """``device`` if this machine can run on it, else a ValueError that says why (instead of torch's
    assertion from deep inside ``.to(device)``).

    >>> check_device("cpu")
    'cpu'
    >>> check_device("gpu")
    Traceback (most recent call last):
    ...
    ValueError: device='gpu' is not a device: choose cpu, cuda, cuda:N or mps
    """
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a device: choose cpu, cuda, cuda:N or mps") from None
    kind = parsed.type
    if kind == "cuda":
        index = parsed.index or 0
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r}, but this PyTorch sees no CUDA GPU (a CPU-only build, or no "
                             "driver): see the README's GPU set-up, or use --device cpu")
        if index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}, but this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif kind == "mps" and best_device() != "mps":
        raise ValueError(f"device={device!r}, but Apple's MPS backend is not available here")
    elif kind not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r}: minilm runs on cpu, cuda or mps")
    return device


def environment_report() -> dict:
    """Versions, threads and accelerators, as a flat dict (printed by `minilm env`)."""
    import torch

    report = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "mps_available": best_device() == "mps",
        "device": best_device(),
    }
    for package in ("tiktoken", "datasets", "numpy", "matplotlib"):
        module = sys.modules.get(package) or __import__(package)
        report[package] = getattr(module, "__version__", "?")
    return report


# Dense bf16 tensor-core peaks (no sparsity), from the vendors' data sheets.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12,
                   "RTX 4090": 165e12, "RTX 3090": 71e12}


def device_name(device: str) -> str:
    """What a benchmark reports as its device: the card's name for a CUDA device, else the device.

    >>> device_name("cpu")
    'cpu'
    """
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return str(device)


def peak_flops(device: str = "cuda") -> float | None:
    """The GPU's peak dense bf16 FLOP/s if we know the card, else None (CPUs: no MFU reported).

    >>> peak_flops("cpu") is None
    True
    """
    import torch

    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    for key, value in PEAK_BF16_FLOPS.items():
        if key in name:
            return value
    return None


def mfu(flops_per_token: float, tokens_per_s: float, device: str = "cuda") -> float | None:
    """Model FLOPs utilisation: achieved training FLOP/s over the card's peak (PaLM, Chowdhery et al.).

    >>> mfu(6e9, 1e3, "cpu") is None
    True
    """
    peak = peak_flops(device)
    return flops_per_token * tokens_per_s / peak if peak else None
