"""Shared fixtures: a small tokenizer trained once per session, hypothesis profiles."""

import os

# No test may download: switch the Hugging Face hub off before `datasets` is imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# `make test` runs the same examples on every run, with or without CI=true, so a red example can be
# reproduced: derandomized, and no example database (it would replay a machine's past failures).
# `make fuzz` (MINILM_HYPOTHESIS_PROFILE=fuzz) explores: fresh random examples, many more of them,
# failures saved to .hypothesis/ and replayed first on the next fuzz run.
settings.register_profile("deterministic", derandomize=True, database=None, max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("MINILM_HYPOTHESIS_PROFILE", "deterministic"))


@pytest.fixture(scope="session")
def shakespeare_sample():
    """About 200k characters of training plays: enough for real merges, fast to train on."""
    from minilm.text.corpus import shakespeare_texts

    return shakespeare_texts("train", max_chars=200_000)


@pytest.fixture(scope="session")
def small_tokenizer(shakespeare_sample):
    from minilm.text.tokenizer import Tokenizer

    return Tokenizer.train(shakespeare_sample, vocab_size=1024)


@pytest.fixture(scope="session")
def cl100k():
    from minilm.text.tokenizer import reference_tokenizer

    return reference_tokenizer("cl100k_base")


@pytest.fixture
def isolated_runs(tmp_path, monkeypatch):
    """Point artifacts and pipeline runs at a temporary folder."""
    monkeypatch.setenv("MINILM_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture
def torchrun():
    """``torchrun(nproc, *args, env=..., timeout=...)``: run ``python -m torch.distributed.run
    --nproc_per_node nproc *args`` with its rendezvous on a free loopback port; returns the finished
    process (output captured). ``env`` adds to this process's environment."""
    import socket
    import subprocess
    import sys

    def launch(nproc: int, *args: str, env: dict | None = None, timeout: float = 300):
        with socket.socket() as probe:  # a free port on loopback for the rendezvous
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                               "--master_addr", "127.0.0.1", "--master_port", port, *args],
                              capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)

    return launch
