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
