"""Data sources, Hugging Face loading (local data only, never the hub), mixing, the build."""

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from minilm.core.checks import ConfigError
from minilm.core.config import DataConfig, get_budget
from minilm.data.sources import DataSourceError, load_hf_source, mix, source_documents
from minilm.text.world import World

TEXTS = ["Once upon a time there was a tiny model.", "It learned to count.", "   ", "The end."]


@pytest.fixture
def offline(monkeypatch):
    # Belt and braces: the hub libraries refuse the network, so a test can never download.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_local_save_to_disk_folder(tmp_path, offline):
    datasets.Dataset.from_dict({"text": TEXTS}).save_to_disk(str(tmp_path / "stories"))
    assert load_hf_source("tinystories", local_path=tmp_path / "stories") == [TEXTS[0], TEXTS[1], TEXTS[3]]
    assert load_hf_source("tinystories", local_path=tmp_path / "stories", max_docs=1) == [TEXTS[0]]


def test_local_dataset_dict_split(tmp_path, offline):
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": TEXTS[:2]}),
                               "validation": datasets.Dataset.from_dict({"text": TEXTS[3:]})})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert load_hf_source("tinystories", split="validation", local_path=tmp_path / "dd") == [TEXTS[3]]


def test_local_jsonl_file(tmp_path, offline):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps({"text": t}) for t in TEXTS))
    assert load_hf_source("mine", local_path=path) == [TEXTS[0], TEXTS[1], TEXTS[3]]


def test_wrong_column_is_clear(tmp_path, offline):
    datasets.Dataset.from_dict({"story": TEXTS}).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataSourceError, match="no text column 'text'"):
        load_hf_source("tinystories", local_path=tmp_path / "d")


def test_bad_local_paths_are_clear(tmp_path, offline):
    with pytest.raises(DataSourceError, match="no such file or folder"):
        load_hf_source("tinystories", local_path=tmp_path / "missing")
    (tmp_path / "data.csv").write_text("text\nhello\n")
    with pytest.raises(DataSourceError, match="use a .json, .jsonl or .parquet"):
        load_hf_source("tinystories", local_path=tmp_path / "data.csv")


def test_offline_hub_load_fails_with_one_clear_message():
    # A fresh process with the hub switched off from the start: no request can leave this machine.
    code = ("from minilm.data.sources import load_hf_source, DataSourceError\n"
            "try:\n    load_hf_source('tinystories', max_docs=5)\n"
            "except DataSourceError as err:\n    print('ERROR:', err)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    message = result.stdout
    assert message.startswith("ERROR:") and "Traceback" not in result.stderr
    assert "roneneldan/TinyStories" in message and "offline" in message and "shakespeare" in message


def test_unknown_source_is_clear():
    with pytest.raises(DataSourceError, match="unknown data set 'webtext'"):
        load_hf_source("webtext")


def test_mix_follows_weights_and_repeats_small_sources():
    docs = {"big": ["x" * 100] * 100, "small": ["y" * 10] * 5}
    mixed, stats = mix(docs, {"big": 0.5, "small": 0.5}, total_chars=2000, seed=0)
    assert stats["big"]["chars"] >= 1000 and stats["small"]["chars"] >= 1000
    assert stats["small"]["passes"] >= 20 and stats["big"]["passes"] == 0.1
    assert mix(docs, {"big": 0.5, "small": 0.5}, 2000, seed=0) == (mixed, stats)  # deterministic
    assert mixed != sorted(mixed)  # shuffled


def test_mix_needs_every_named_source():
    with pytest.raises(DataSourceError, match="no documents: web"):
        mix({"a": ["text"]}, {"a": 0.5, "web": 0.5}, 100)


@pytest.mark.parametrize("documents, weights, total_chars, error, message", [
    ({"a": ["", ""]}, {"a": 1.0}, 20, DataSourceError, "hold only empty texts: a"),  # drew forever before
    ({"a": ["text"]}, {"a": float("inf")}, 20, ValueError, "finite numbers >= 0"),
    ({"a": ["text"]}, {"a": float("nan")}, 20, ValueError, "finite numbers >= 0"),
    ({"a": ["text"]}, {"a": -1.0}, 20, ValueError, "finite numbers >= 0"),
    ({"a": ["text"]}, {"a": 1.0}, -5, ValueError, "total_chars=-5 must be a whole number >= 1"),
])
def test_mix_refuses_what_it_cannot_draw(documents, weights, total_chars, error, message):
    with pytest.raises(error, match=message):
        mix(documents, weights, total_chars)


@pytest.mark.parametrize("max_docs", [-3, 0, 2.5, "3"])
def test_max_docs_is_a_positive_count(tmp_path, max_docs):
    with pytest.raises(ValueError, match=f"max_docs={max_docs!r} must be a whole number >= 1"):
        load_hf_source("tinystories", local_path=tmp_path / "stories", max_docs=max_docs)


def test_data_config_validation():
    with pytest.raises(ConfigError, match="weights sum to 0"):
        DataConfig(mixture=(("shakespeare", 0.0),))
    with pytest.raises(ConfigError, match="total_chars=10 is out of range"):
        DataConfig(total_chars=10)
    assert sum(DataConfig().weights().values()) == pytest.approx(1.0)


def test_sources_have_train_and_validation_text():
    raw = source_documents(get_budget("smoke"))
    assert set(raw["train"]) == {"shakespeare", "biographies", "arithmetic", "countdown", "letters"}
    assert set(raw["val"]) == set(raw["train"])  # every source is measured on held-out text of its own
    for source, docs in raw["val"].items():
        assert docs and not set(docs) & set(raw["train"][source]), source
    # validation biographies: facts of seen people, in sentences no training biography holds
    train_sentences = {s for bio in raw["train"]["biographies"] for s in bio.split(". ")}
    assert not {s for bio in raw["val"]["biographies"] for s in bio.split(". ")} & train_sentences
    seen = {p.name for p in World(get_budget("smoke").world).people}
    assert all(any(name in bio for name in seen) for bio in raw["val"]["biographies"])


def test_each_planted_problem_is_removed_and_no_clean_document_is_lost():
    from collections import Counter

    from minilm.data.contamination import world_eval_texts
    from minilm.data.sources import planted_corpus, process
    from minilm.text.world import World

    tiny = World(get_budget("smoke").world)
    raw = planted_corpus(80, seed=1, world=tiny)
    out, log = process(raw, world_eval_texts(tiny))
    before, after = Counter(raw["planted"]), Counter(out["planted"])
    assert after["clean"] == before["clean"] == 80
    for removed in ("exact_dup", "near_dup", "junk", "leak"):
        assert after[removed] == 0, removed
    assert after["pii"] == before["pii"] and after["boilerplate"] == before["boilerplate"]  # repaired, kept
    kept = dict(zip(out["planted"], out["text"]))
    assert "<EMAIL>" in kept["pii"] or "<PHONE>" in kept["pii"] or "<IP>" in kept["pii"] or "<CARD>" in kept["pii"]
    assert not any("cookies" in t for t, p in zip(out["text"], out["planted"]) if p == "boilerplate")
    assert [r["step"] for r in log.rows][0] == "clean" and all(r["docs_out"] <= r["docs_in"] for r in log.rows)


def test_build_data_writes_shards_then_reuses_them(isolated_runs):
    import time

    from minilm.stages.data import artifact as build_data
    from minilm.data.shards import TokenShards

    budget = get_budget("smoke")
    report = build_data(budget, progress=False)
    shards = TokenShards(report["directory"])
    assert shards.index["splits"]["train"]["tokens"] == report["splits"]["train"]["tokens"] > 100_000
    assert set(report["mixture"]) == {"shakespeare", "biographies", "arithmetic", "countdown", "letters"}
    shares = {s: m["chars"] / sum(x["chars"] for x in report["mixture"].values()) for s, m in report["mixture"].items()}
    assert abs(shares["shakespeare"] - 0.5) < 0.05 and abs(shares["biographies"] - 0.25) < 0.05
    assert report["mixture"]["biographies"]["passes"] > 1  # a small source is repeated to reach its share
    start = time.perf_counter()
    assert build_data(budget, progress=False) == report  # same inputs: the shards are reused
    assert time.perf_counter() - start < 2


def test_a_moved_runs_folder_reads_its_own_shards(isolated_runs, monkeypatch):
    # The report names the shards' folder: after a move, the old path must not be read (or trained on).
    from minilm.stages.data import artifact as build_data
    from minilm.core.files import UnreadableFileError
    from minilm.data.shards import TokenShards

    budget = get_budget("smoke")
    report = build_data(budget, progress=False)
    moved = isolated_runs.parent / "moved"
    isolated_runs.rename(moved)
    monkeypatch.setenv("MINILM_RUNS", str(moved))
    again = build_data(budget, progress=False)
    assert again["directory"] == report["directory"].replace(str(isolated_runs), str(moved)) != report["directory"]
    assert TokenShards(again["directory"]).tokens("train").size == report["splits"]["train"]["tokens"]
    report_path = Path(again["directory"]) / "build_report.json"
    report_path.write_text(report_path.read_text()[:40])  # truncated
    with pytest.raises(UnreadableFileError, match=f"{report_path}: not a readable JSON file.*delete it"):
        build_data(budget, progress=False)


def test_held_out_people_change_neither_the_key_nor_the_shards(tmp_path, monkeypatch):
    """More never-seen people (more chapter-08 questions) cost no pretraining: the seen people and
    every pretraining document stay the same (their questions decontaminate nothing), so the
    tokenizer, the shards and the base model keep their keys."""
    from dataclasses import replace

    from minilm.core.config import DataConfig, TokenizerConfig
    from minilm.stages import pretrain, tokenizer as tokenizer_stage
    from minilm.stages.data import artifact as build_data, path as data_path

    small = get_budget("smoke").with_overrides(corpus_chars=40_000, tokenizer=TokenizerConfig(vocab_size=400),
                                               data=DataConfig(total_chars=60_000, shard_tokens=50_000))
    more = small.with_overrides(world=replace(small.world, heldout_people=small.world.heldout_people + 50))
    assert data_path(more) == data_path(small) and tokenizer_stage.path(more) == tokenizer_stage.path(small)
    assert pretrain.path(more) == pretrain.path(small)
    assert data_path(small.with_overrides(world=replace(small.world, people=small.world.people + 1))) != data_path(small)
    files = {}
    for name, budget in (("small", small), ("more", more)):
        monkeypatch.setenv("MINILM_RUNS", str(tmp_path / name))
        folder = Path(build_data(budget, progress=False)["directory"])
        files[name] = {f.relative_to(folder): f.read_bytes() for f in sorted(folder.rglob("*.bin"))}
    assert files["small"] and files["small"] == files["more"]
