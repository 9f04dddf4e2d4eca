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


# -- a mid-trained model, built once: tests of the stage and of chapter 07's studies share it ------


@pytest.fixture(scope="session")
def tiny_midtrain_budget():
    from minilm.core.config import (DataConfig, MidtrainConfig, PretrainConfig, TokenizerConfig, WorldConfig,
                                    get_budget)

    return get_budget("smoke").with_overrides(
        corpus_chars=40_000, tokenizer=TokenizerConfig(vocab_size=400),
        world=WorldConfig(people=8, heldout_people=4, bios_per_person=2, arithmetic_docs=20, countdown_docs=4,
                          spelling_docs=4),
        data=DataConfig(total_chars=60_000, shard_tokens=50_000),
        pretrain=PretrainConfig(depth=1, steps=4, batch_size=4, seq_len=64, warmup_steps=1, eval_every=4,
                                sample_every=0),
        midtrain=MidtrainConfig(steps=6, batch_size=2, context=128, warmup_steps=1, curated_docs=10, tool_docs=10,
                                eval_every=3, probe_n=3, tool_digits=(3,), grow_steps=2, extension_steps=3))


@pytest.fixture(scope="session")
def midtrained(tiny_midtrain_budget, tmp_path_factory):
    """``(runs folder, model, tokenizer, summary)`` of the tiny budget's mid-training."""
    from minilm.stages.midtrain import artifact

    with pytest.MonkeyPatch.context() as patch:
        runs = tmp_path_factory.mktemp("runs")
        patch.setenv("MINILM_RUNS", str(runs))
        model, tokenizer, summary = artifact(tiny_midtrain_budget, progress=False)
        yield runs, model, tokenizer, summary
