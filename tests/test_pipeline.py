"""The course pipeline at the smoke budget, and stage artifacts."""

import json

from minilm.artifacts import tokenizer_artifact, tokenizer_path
from minilm.config import get_budget
from minilm.pipeline import run_pipeline
from minilm.tokenizer import Tokenizer


def test_pipeline_writes_report_metrics_and_figure(isolated_runs, tmp_path):
    report = run_pipeline(get_budget("smoke"), tmp_path / "run")
    text = report.read_text()
    assert "## Corpus" in text and "## Tokenizer" in text and "## Time per stage" in text
    assert (tmp_path / "run" / "figures" / "bytes_per_token.png").stat().st_size > 10_000
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["tokenizer"]["vocab_size"] == get_budget("smoke").tokenizer.vocab_size
    # our Shakespeare-trained tokenizer compresses held-out plays, and GPT-4's was measured on them too
    assert 2.0 < metrics["tokenizer"]["val_bytes_per_token"]
    assert metrics["tokenizer"]["val_bytes_per_token_GPT-4 (cl100k_base)"] > 3.0
    assert metrics["corpus"]["val_documents"] > 0


def test_artifact_is_built_once_then_loaded(isolated_runs):
    budget = get_budget("smoke").with_overrides(corpus_chars=20_000)
    first = tokenizer_artifact(budget, progress=False)
    path = tokenizer_path(budget)
    assert path.exists() and path.is_relative_to(isolated_runs)
    mtime = path.stat().st_mtime_ns
    second = tokenizer_artifact(budget, progress=False)
    assert path.stat().st_mtime_ns == mtime and second.ranks == first.ranks
    assert isinstance(second, Tokenizer)


def test_artifact_key_changes_with_config():
    smoke = get_budget("smoke")
    assert tokenizer_path(smoke) != tokenizer_path(smoke.with_overrides(corpus_chars=1000))
