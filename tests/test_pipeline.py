"""The course pipeline at the smoke budget, and stage artifacts."""

import json

import pytest

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


def test_readme_results_table_comes_from_the_run(isolated_runs, tmp_path):
    from minilm.pipeline import README_END, README_START, update_readme

    report = run_pipeline(get_budget("smoke"), tmp_path / "run", stages=["corpus"])
    metrics = json.loads((report.parent / "metrics.json").read_text())
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n{README_START}\nold\n{README_END}\nafter\n")
    update_readme(readme, metrics)
    text = readme.read_text()
    assert "old" not in text and text.endswith("after\n") and "**smoke** budget" in text
    assert f"| corpus | val documents | {metrics['corpus']['val_documents']} |" in text
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="no <!-- results:start -->"):
        update_readme(readme, metrics)
