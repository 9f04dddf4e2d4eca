"""The `minilm` command line: stages listed, clear one-line errors, real outputs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minilm.cli import main
from minilm.core.config import TokenizerConfig


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "minilm", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_help_lists_the_stages():
    result = run_cli("--help")
    assert result.returncode == 0
    for stage in ("env", "tokenizer", "pipeline", "bench", "check"):
        assert stage in result.stdout


@pytest.mark.parametrize("args, message", [
    (["tokenizer", "train", "--vocab-size", "10"], "minilm: error: vocab_size=10 is out of range"),
    (["tokenizer", "train", "--digit-group", "7"], "minilm: error: digit_group=7 is out of range"),
    (["tokenizer", "train", "--input", "/no/such/file.txt"], "minilm: error: /no/such/file.txt: no such text file"),
    (["tokenizer", "encode", "hi", "--tokenizer", "/no/such.json"], "no tokenizer file here"),
])
def test_bad_input_is_one_clear_line(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_budget_is_rejected_by_argparse():
    result = run_cli("--budget", "huge", "env")
    assert result.returncode == 2 and "invalid choice: 'huge'" in result.stderr


@pytest.mark.parametrize("argv, budget", [
    (["--budget", "gpu", "pretrain"], "gpu"),  # before the command
    (["pretrain", "--budget", "smoke"], "smoke"),  # after it
    (["--budget", "gpu", "data", "--budget", "smoke"], "smoke"),  # both: the one after the command wins
    (["data", "build", "--budget", "smoke"], "smoke"),  # after a sub-command
    (["data"], None),  # neither: the environment's (get_budget(None))
])
def test_budget_may_come_before_or_after_the_command(argv, budget):
    from minilm.cli import build_parser

    assert build_parser().parse_args(argv).budget == budget


def test_train_on_files_then_encode(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. " * 50 + "안녕 🤗", encoding="utf-8")
    out = tmp_path / "tok.json"
    main(["tokenizer", "train", "--vocab-size", "300", "--input", str(text), "--out", str(out)])
    assert out.exists()
    capsys.readouterr()
    main(["tokenizer", "encode", "the cat 🤗", "--tokenizer", str(out)])
    shown = json.loads(capsys.readouterr().out)
    assert "".join(shown["tokens"]) == "the cat 🤗" and shown["count"] == len(shown["ids"])


def test_training_on_files_never_replaces_the_budgets_tokenizer(tmp_path, isolated_runs, capsys):
    # The budget's artifact path is what every later stage loads: a tokenizer of other text saved
    # there would be taken for the budget's (same vocabulary, same key).
    from minilm.stages.tokenizer import path as tokenizer_path
    from minilm.core.config import get_budget

    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. " * 50, encoding="utf-8")
    main(["--budget", "smoke", "tokenizer", "train", "--vocab-size", "300", "--input", str(text)])
    saved = Path(capsys.readouterr().out.strip().rsplit(" to ", 1)[1])
    budget_path = tokenizer_path(get_budget("smoke").with_overrides(tokenizer=TokenizerConfig(vocab_size=300)))
    assert saved.exists() and saved.parent == isolated_runs / "tokenizers" and not budget_path.exists()
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["tokenizer", "train", "--input", str(empty)])
    assert f"{empty}: no text to learn merges from" in capsys.readouterr().err


def test_training_the_budgets_tokenizer_gives_the_pipelines(isolated_runs, capsys, monkeypatch):
    # Without --input the command builds what tokenizer_artifact builds (plays + tiny world), at its path.
    from minilm.stages import tokenizer as tokenizer_stage
    from minilm.core.config import get_budget
    from minilm.text.tokenizer import Tokenizer

    budget = get_budget("smoke").with_overrides(corpus_chars=20_000, tokenizer=TokenizerConfig(vocab_size=400))
    monkeypatch.setattr("minilm.cli.get_budget", lambda name: budget)
    main(["tokenizer", "train"])
    path = tokenizer_stage.path(budget)
    assert capsys.readouterr().out.strip().endswith(f" to {path}")
    expected = Tokenizer.from_config(tokenizer_stage.training_texts(budget), budget.tokenizer)
    sample = tokenizer_stage.training_texts(budget)[-1]  # a tiny-world document
    assert Tokenizer.load(path).encode(sample) == expected.encode(sample)


@pytest.mark.parametrize("args, message", [
    (["check", "*"], "chapter '*': give its two digits"),
    (["pipeline", "--stages", "tokenizer", "nope"], "unknown stage 'nope'"),
    (["pipeline", "--stages", "tokenizer", "--readme"], "--readme publishes a whole run"),
    (["--budget", "smoke", "pipeline", "--readme"], "--readme publishes a whole run"),
    (["tokenizer", "train", "--vocab-size", "0"], "vocab_size=0 is out of range"),
    (["tokenizer", "train", "--digit-group", "0"], "digit_group=0 is out of range"),
])
def test_bad_requests_stop_before_any_work(isolated_runs, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and message in captured.err and captured.err.count("\n") == 1
    assert captured.out == "" and not (isolated_runs / "pipeline-smoke").exists()


def test_file_system_mistakes_are_one_line_and_write_nothing(tmp_path, isolated_runs, capsys):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat. " * 50, encoding="utf-8")
    for args, message in [
        (["tokenizer", "train", "--vocab-size", "300", "--input", str(text), "--out", str(text)],
         "is one of the --input files"),
        (["tokenizer", "train", "--vocab-size", "300", "--input", str(text), "--out", str(tmp_path)], "is a folder"),
        (["tokenizer", "encode", "hi", "--tokenizer", str(tmp_path)], "Is a directory"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and err.count("\n") == 1, err
    assert text.read_text(encoding="utf-8").startswith("the cat sat")


def test_generate_checks_its_arguments_before_printing_the_prompt(monkeypatch, capsys, small_tokenizer):
    from minilm.models.gpt import GPT, GPTConfig

    model = GPT(GPTConfig.modern(vocab_size=small_tokenizer.vocab_size, block_size=16, n_layer=1, n_embd=16,
                                 n_head=2)).eval()
    monkeypatch.setattr("minilm.cli._base_model", lambda args, build=True: (model, small_tokenizer))
    with pytest.raises(SystemExit):
        main(["generate", "ROMEO", "--stop", ""])
    captured = capsys.readouterr()
    assert captured.out == "" and "stop" in captured.err
    main(["generate", "ROMEO", "--max-new-tokens", "3", "--temperature", "0"])
    assert capsys.readouterr().out.startswith("ROMEO")


def test_encode_with_corrupted_tokenizer_is_clear(tmp_path, capsys):
    bad = tmp_path / "tok.json"
    bad.write_text('{"format": "minilm-bpe", "version": 1, "merg')
    with pytest.raises(SystemExit):
        main(["tokenizer", "encode", "hi", "--tokenizer", str(bad)])
    assert "truncated or corrupted" in capsys.readouterr().err


def test_env_reports_torch_and_device(capsys):
    main(["env"])
    out = capsys.readouterr().out
    assert "torch" in out and "device" in out and "cuda_available" in out


def test_bench_tokenizer_prints_one_json_line():
    result = run_cli("bench", "tokenizer", "--vocab-size", "512")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert set(figures) >= {"train_seconds", "vocab_size", "corpus_bytes", "encode_mb_per_s", "bytes_per_token"}
    assert figures["vocab_size"] == 512 and figures["corpus_bytes"] > 4_500_000
    assert figures["bytes_per_token"] > 1.5 and figures["encode_mb_per_s"] > 0


def test_bench_pretrain_trains_for_its_time_budget_and_reports():
    from minilm.bench import bench_pretrain

    result = bench_pretrain("baby", seconds=2, eval_tokens=2_000)
    assert set(result) >= {"config", "seconds", "tokens_per_s", "val_bpb", "mfu", "device"}
    assert result["config"]["vocab_size"] < 120 and result["config"]["steps"] >= 1  # characters, as nanoGPT's run
    assert result["mfu"] is None and result["device"] == "cpu"  # no MFU without a known GPU peak
    assert result["attention_kernels"] == ["aten::_scaled_dot_product_flash_attention_for_cpu"]
    assert result["tokens_per_s"] > 0 and 1.0 < result["val_bpb"] < 9.0
    # The schedule ends with the time (TrainConfig.max_seconds): the run takes its budget.
    assert 1.6 < result["seconds"] < 2.6, result["seconds"]
    with pytest.raises(ValueError, match="config="):
        bench_pretrain("huge")
    best = bench_pretrain("best", seconds=2, eval_tokens=2_000)  # BPE + Muon path
    assert best["config"]["optimizer"] == "muon" and best["config"]["vocab_size"] == 2048
    assert 1.0 < best["val_bpb"] < 9.0


def test_bench_pretrain_settings_change_the_configuration(capsys):
    # From the command line, as a GPU session measures variants: heads of 64 instead of 32, a
    # compiled model, and the run's config shows what was set.
    main(["bench", "pretrain", "--config", "baby", "--seconds", "3", "--set", "n_head=2",
          "--set", "compile=true", "--set", "batch_size=4"])
    figures = json.loads(capsys.readouterr().out)
    assert figures["config"]["settings"] == {"n_head": 2, "compile": True, "batch_size": 4}
    assert figures["config"]["n_head"] == 2 and figures["config"]["batch_size"] == 4
    # Heads split the same width: the parameters of the configuration as written.
    assert figures["config"]["params"] == bench_config_params("baby", figures["config"]["vocab_size"])
    assert 1.0 < figures["val_bpb"] < 9.0


def bench_config_params(name, vocab_size):
    from minilm.bench import PRETRAIN_BENCH_CONFIGS
    from minilm.models.gpt import GPT, GPTConfig

    c = PRETRAIN_BENCH_CONFIGS[name]
    return GPT(GPTConfig.gpt2(vocab_size=vocab_size, n_layer=c["n_layer"], n_head=c["n_head"], n_embd=c["n_embd"],
                              block_size=c["seq_len"], **c["model"])).num_params()


@pytest.mark.parametrize("config, settings, message", [
    ("baby", ["n_heads=6"], "n_heads: not a setting of `minilm bench pretrain`"),
    ("baby", ["n_head"], "write KEY=VALUE"),
    ("baby", ["n_head=six"], "n_head must be a whole number"),
    ("baby", ["lr=fast"], "lr must be a number"),
    ("baby", ["compile=maybe"], "compile is true or false"),
    ("baby", ["compile_mode=fastest"], "compile_mode='fastest'"),
    ("baby", ["style=modren"], "style='modren'"),
    ("baby", ["n_head=5"], "n_head"),  # 128 wide does not split into 5 heads
    ("best", ["cache_order=4"], "cache_order needs ngram_order"),
    ("hybrid", ["weight_plays=0"], "weight_plays=0: choose 1 to 33"),
])
def test_bench_pretrain_settings_are_checked(capsys, config, settings, message):
    args = ["bench", "pretrain", "--config", config, "--seconds", "1"]
    for setting in settings:
        args += ["--set", setting]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1, err


def test_bench_pretrain_hybrid_interpolates_with_a_4gram_model():
    from minilm.bench import bench_pretrain

    result = bench_pretrain("hybrid", seconds=4, eval_tokens=2_000)
    w = result["interpolation_weight"]
    assert 0.0 < w < 1.0 and result["config"]["ngram_order"] == 4
    # Counting, fitting the weight and training all fit in the budget (seconds counts all three).
    assert 0 < result["ngram_seconds"] < result["seconds"] < 8.0, result
    # The mixture is never worse than the weighted average of its parts (log is concave); after a
    # few seconds of training the counts beat the transformer.
    # The headline val_bpb is the transformer alone; the mixture is reported beside it.
    parts = w * result["val_bpb"] + (1 - w) * result["ngram_val_bpb"]
    assert result["hybrid_val_bpb"] <= parts + 0.002
    assert result["ngram_val_bpb"] < result["val_bpb"] and result["hybrid_val_bpb"] < result["val_bpb"]


def test_bench_pretrain_cached_remembers_the_play_read_so_far():
    from minilm.bench import bench_pretrain

    result = bench_pretrain("cached", seconds=6, eval_tokens=4_000)
    betas = result["cache_betas"]
    assert result["config"]["cache_order"] == 4 and len(betas) == 4 and all(b > 0 for b in betas)
    assert 0 < result["ngram_seconds"] < result["seconds"] < 10.0, result
    # The same windows' mixture without the cache, then with it: the play's own counts help
    # (its speakers' names, unknown to the training plays, repeat from their first lines).
    assert result["cached_val_bpb"] < result["hybrid_val_bpb"] - 0.05, result
    assert result["hybrid_val_bpb"] < result["val_bpb"]  # the headline: the transformer alone
    assert 0.0 < result["interpolation_weight"] < 1.0


def test_generate_without_a_base_model_is_one_clear_line(isolated_runs, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--budget", "smoke", "generate", "To be"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "no base model for the smoke budget" in err and "minilm --budget smoke pretrain" in err


@pytest.fixture
def tiny_base_model(isolated_runs, small_tokenizer):
    """A tiny model saved where the smoke budget's base model lives (training one takes minutes)."""
    import torch

    from minilm.stages.pretrain import path as base_model_path
    from minilm.stages.tokenizer import path as tokenizer_path
    from minilm.core.config import get_budget
    from minilm.models.gpt import GPT, GPTConfig
    from minilm.models.checkpoint import save_checkpoint

    budget = get_budget("smoke")
    small_tokenizer.save(tokenizer_path(budget))
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=small_tokenizer.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=64))
    path = save_checkpoint(base_model_path(budget), model, None, 0, {}, [])
    path.with_suffix(".json").write_text("{}")
    return model.eval(), small_tokenizer


def test_generate_streams_what_the_engine_produces(tiny_base_model, capsys):
    from minilm.inference.generate import stream

    model, tokenizer = tiny_base_model
    flags = ["--max-new-tokens", "12", "--temperature", "0.9", "--top-k", "40", "--top-p", "0.95", "--min-p", "0.01",
             "--seed", "3"]
    main(["--budget", "smoke", "generate", "To be", *flags])
    printed = capsys.readouterr().out
    expected = "".join(stream(model, tokenizer, "To be", max_new_tokens=12, temperature=0.9, top_k=40, top_p=0.95,
                              min_p=0.01, seed=3))
    assert printed == "To be" + expected + "\n" and len(expected) > 0
    main(["--budget", "smoke", "generate", "To be", *flags, "--seed", "4", "--tools"])
    assert capsys.readouterr().out != printed  # another seed, another text
    main(["--budget", "smoke", "generate", "To be", "--temperature", "0", "--stop", "e", "--max-new-tokens", "30"])
    greedy = capsys.readouterr().out
    assert greedy.startswith("To be") and "e" not in greedy[len("To be"):]


def test_generate_rejects_bad_sampling_flags_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--budget", "smoke", "generate", "To be", "--min-p", "3"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "min_p=3.0 must be in [0, 1]" in err and err.count("\n") == 1


@pytest.fixture
def tiny_generation_bench(monkeypatch):
    """`bench generate` on a tiny model and synthetic tokens: the real smoke base model and its data
    take minutes to build. Returns (model, byte_lengths, tokens)."""
    from types import SimpleNamespace

    import numpy as np
    import torch

    from minilm.stages import pretrain
    from minilm.models.gpt import GPT, GPTConfig
    from minilm.models.train import SourceTokens, token_byte_lengths

    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=64, n_layer=1, n_embd=32, n_head=2, block_size=32)).eval()
    tokenizer = SimpleNamespace(vocab_size=64, vocab={i: bytes([97 + i % 26]) * (1 + i % 3) for i in range(64)})
    tokens = np.random.default_rng(0).integers(0, 64, 3_000)
    monkeypatch.setattr(pretrain, "artifact", lambda budget, progress=True, device=None: (model, tokenizer, {}))
    val = SourceTokens({"shakespeare": tokens, "arithmetic": tokens[:1000]}, {"shakespeare": 3, "arithmetic": 1})
    monkeypatch.setattr(pretrain, "load_tokens", lambda budget, progress=True: (tokens, val, tokenizer))
    return model, token_byte_lengths(tokenizer), val


def test_bench_generate_measures_cache_batching_and_int8(tiny_generation_bench):
    from minilm.bench import bench_generate
    from minilm.models.train import evaluate

    model, byte_lengths, tokens = tiny_generation_bench
    result = bench_generate("smoke", new_tokens=40, batch_size=3, repeats=1)
    assert set(result) >= {"kv_speedup", "decode_tokens_per_s", "batch_tokens_per_s", "int8_size_ratio",
                           "int8_bpb_delta", "device", "config"}
    config = result["config"]
    # 8 + 40 tokens do not fit in the 32-token context: timed with RoPE extended, the in-context part apart.
    assert config["block_size"] == 32 and config["timing_block_size"] == 48 and config["tokens_in_block"] == 24
    assert config["timed_tokens"] == 40
    assert model.config.block_size == 32  # the base model itself is not changed
    assert result["kv_speedup"] > 0.3 and result["kv_speedup_in_block"] > 0.3  # timings: only sane, not fast
    assert result["decode_tokens_per_s"] > 0 and result["batch_tokens_per_s"] > 0
    assert set(result["decode_step_ms"]) == {"forward", "flat"} and min(result["decode_step_ms"].values()) > 0
    assert 0.25 < result["int8_size_ratio"] <= 0.30
    bpb = evaluate(model, tokens, 32, 64, 10**9, byte_lengths)["bpb"]  # the mixture of both sources
    assert result["val_bpb"] == pytest.approx(bpb, abs=1e-4)
    assert result["int8_bpb_delta"] == pytest.approx(result["int8_val_bpb"] / result["val_bpb"] - 1, abs=1e-4)
    assert 0 < abs(result["int8_bpb_delta"]) < 0.01 and result["device"] == "cpu"


def test_cache_timings_alternate_the_two_paths_and_keep_the_best(monkeypatch):
    from minilm.inference import timing

    calls, times = [], iter([9.0, 2.0, 7.0, 3.0, 8.0, 1.5])
    def fake_seconds(model, prompts, new_tokens, use_cache=True, repeats=3):
        calls.append(use_cache)
        return next(times)
    monkeypatch.setattr(timing, "generation_seconds", fake_seconds)
    assert timing.cache_timings(None, [[1]], 5, repeats=3) == (7.0, 1.5)
    assert calls == [False, True] * 3  # a slow spell of the machine hits both sides alike


def test_bench_generate_from_the_cli_prints_one_json_line(tiny_generation_bench, capsys):
    main(["--budget", "smoke", "bench", "generate", "--new-tokens", "12", "--batch-size", "2", "--repeats", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["config"]["new_tokens"] == 12 and figures["config"]["batch_size"] == 2
    assert figures["config"]["budget"] == "smoke" and figures["config"]["timing_block_size"] == 32  # 8 + 12 fit


@pytest.mark.parametrize("args, message", [
    (["bench", "tokenizer", "--new-tokens", "5"], "--new-tokens belongs to `minilm bench generate`"),
    (["bench", "generate", "--config", "baby"], "--config belongs to `minilm bench pretrain`"),
    (["bench", "pretrain", "--vocab-size", "512"], "--vocab-size belongs to `minilm bench tokenizer`"),
    (["bench", "tokenizer", "--set", "n_head=2"], "--set belongs to `minilm bench pretrain`"),
    (["--budget", "smoke", "bench", "generate", "--new-tokens", "0"], "new_tokens=0 must be a whole number >= 1"),
])
def test_bench_options_belong_to_their_benchmark(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1


@pytest.mark.parametrize("args, message", [
    (["world", "eval", "-n", "0"], "argument -n: 0 must be at least 1"),
    (["world", "people", "-n", "-1"], "argument -n: -1 must be at least 1"),
    (["eval", "-n", "0"], "argument -n/--n: 0 must be at least 1"),
    (["sample", "ROMEO", "-n", "x"], "argument -n: 'x' is not a whole number"),
    (["generate", "ROMEO", "--max-new-tokens", "-1"], "argument --max-new-tokens: -1 must be at least 0"),
    (["sft", "--chat-data", "x.jsonl", "--chat-limit", "0"], "argument --chat-limit: 0 must be at least 1"),
    (["generate", "ROMEO", "--seed", "99999999999999999999999"], "too large for a seed"),
    (["sample", "ROMEO", "--seed", "-1"], "argument --seed: -1 must be at least 0"),
    (["pretrain", "--device", "gpu"], "device='gpu' is not a device"),
    (["sft", "--device", "cuda:7"], "device='cuda:7'"),
])
def test_counts_on_the_command_line_are_checked_before_anything_runs(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and message in captured.err and captured.out == ""


def test_only_rope_models_are_timed_past_their_context(tiny_generation_bench, monkeypatch):
    from minilm.stages import pretrain
    from minilm.bench import bench_generate
    from minilm.inference.timing import with_context
    from minilm.models.gpt import GPT, GPTConfig

    learned = GPT(GPTConfig.gpt2(vocab_size=64, n_layer=1, n_embd=16, n_head=2, block_size=16)).eval()
    assert with_context(learned, 16) is learned
    with pytest.raises(ValueError, match="only RoPE models"):
        with_context(learned, 20)
    _, tokenizer, _ = pretrain.artifact("smoke")
    monkeypatch.setattr(pretrain, "artifact", lambda budget, progress=True, device=None: (learned, tokenizer, {}))
    config = bench_generate("smoke", new_tokens=30, batch_size=2, repeats=1)["config"]
    assert config["timed_tokens"] == 8 and config["timing_block_size"] == 16  # what fits after the 8-token prompt


def _midtrain_summary():
    """The shape of a mid-training summary (minilm.stages.midtrain.midtrain), with made-up figures."""
    probes = {k: {"accuracy": a, "n": 10} for k, a in
              [("facts_seen", 0.9), ("addition_2digit", 0.95), ("subtraction_2digit", 0.2), ("addition_3digit", 0.1)]}
    run = {"val_loss": 4.0, "val_bpb": 2.0, "probes": probes, "history": [{"step": 1, "loss": 4.0, "lr": 0.0}]}
    call = "<|calc_start|>123+456<|calc_end|><|result_start|>579<|result_end|>"
    measured = {"loss_by_position": [3.0, 2.5, 2.4, 2.3], "recall": {"0": {"accuracy": 0.1, "distance": 3.0}}}
    context = {"trained": 2, "extended": 4, "method": "extrapolate", "base_window": {**measured, "loss_by_position": [3.0, 2.5]},
               "base": measured, "midtrained": measured}
    return {"base": run, "runs": {"anneal": run}, "context": context, "seconds": 12.0, "config": {"steps": 7},
            "tools": [{"op": "+", "digits": 3, "with_tool": 0.75, "without_tool": 0.05, "called_tool": 1.0,
                       "n": 10, "examples": [["123+456=", "579", call]]}]}


def _fake_midtrain(monkeypatch) -> dict:
    """Replace mid-training by a stand-in that records the budget it is given (in the dict returned)."""
    import minilm.stages.midtrain

    seen = {}

    def fake_artifact(budget, device=None):
        seen["budget"] = budget
        return None, None, _midtrain_summary()

    monkeypatch.setattr(minilm.stages.midtrain, "artifact", fake_artifact)
    return seen


def test_midtrain_prints_the_comparison_the_context_and_the_tool_table(monkeypatch, capsys):
    seen = _fake_midtrain(monkeypatch)
    main(["--budget", "smoke", "midtrain", "--steps", "7", "--lr", "0.002"])
    out = capsys.readouterr().out
    assert seen["budget"].midtrain.steps == 7 and seen["budget"].midtrain.lr == 0.002
    assert "mid-trained model: " in out and "| held-out 2-digit subtraction | 20.0% | 20.0% |" in out
    assert "| recall, needle 3 tokens back | 10% | 10% | 10% |" in out
    assert "| 3-digit addition | 5.0% | 75.0% | 100% |" in out and "123+456=<|calc_start|>123+456" in out


@pytest.mark.parametrize("stage", ["pretrain", "midtrain", "sft"])
@pytest.mark.parametrize("args, message", [(["--steps", "0"], "steps=0 is out of range"),
                                           (["--lr", "-1"], "lr=-1.0 is out of range"),
                                           (["--lr", "0"], "lr=0.0: a learning rate of 0 (or less) trains nothing")])
def test_training_stages_reject_bad_settings_in_one_line(capsys, stage, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--budget", "smoke", stage, *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1


def test_fewer_steps_than_the_warmup_shorten_it_with_a_one_line_warning(monkeypatch, capsys):
    seen = _fake_midtrain(monkeypatch)
    main(["--budget", "smoke", "midtrain", "--steps", "2"])
    err = capsys.readouterr().err
    assert seen["budget"].midtrain.steps == 2 and seen["budget"].midtrain.warmup_steps == 1
    assert err == "minilm: warning: midtrain: warmup_steps=2 does not fit in 2 steps (at most 1); warming up over 1 instead\n"


def test_eval_checkpoint_prints_the_table_and_saves_json(tiny_base_model, capsys):
    from minilm.stages.pretrain import path as base_model_path
    from minilm.core.config import get_budget

    path = base_model_path(get_budget("smoke"))
    main(["--budget", "smoke", "eval", str(path), "-n", "2", "--max-new-tokens", "4"])
    out = capsys.readouterr().out
    saved = path.with_suffix(".eval.json")
    assert f"results: {saved}" in out and "| facts (n=2) |" in out and "| format (n=10) |" in out
    results = json.loads(saved.read_text())
    assert results["config"]["n"] == 2 and results["config"]["max_new_tokens"] == 4
    assert results["categories"]["letters"]["n"] == 2


@pytest.mark.parametrize("args, message", [
    (["eval", "{missing}"], "no checkpoint here"),
    (["eval", "{corrupt}"], "not a readable checkpoint"),
    (["eval", "{corrupt}", "--samples", "3"], "samples=3 needs a temperature > 0"),
    (["eval", "--samples", "3"], "--samples belong to the chat eval: give a CHECKPOINT"),
])
def test_eval_bad_checkpoint_or_flags_is_one_clear_line(isolated_runs, tmp_path, capsys, args, message):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    args = [a.format(missing=tmp_path / "missing.pt", corrupt=corrupt) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(["--budget", "smoke", *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1


GPU_CHECK = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"


def test_gpu_check_variants_are_valid_d12_configurations():
    # The GPU script runs on a lent machine in minutes that cannot be spent on a typo: every variant
    # it benchmarks must be a setting `minilm bench pretrain` takes and a model that can be built.
    import re

    from minilm.bench import PRETRAIN_BENCH_CONFIGS, parse_settings
    from minilm.models.gpt import GPTConfig
    from minilm.models.train import TrainConfig

    variants = re.findall(r'^bench "([^"]*)"$', GPU_CHECK.read_text(), flags=re.MULTILINE)
    assert variants[0] == "" and len(variants) >= 3  # the configuration as committed comes first
    for variant in variants:
        c = {**PRETRAIN_BENCH_CONFIGS["d12"], **parse_settings(variant.split())}
        GPTConfig.modern(vocab_size=c["vocab"], n_layer=c["n_layer"], n_head=c["n_head"], n_embd=c["n_embd"],
                         block_size=c["seq_len"])
        TrainConfig(batch_size=c["batch_size"], seq_len=c["seq_len"], compile_mode=c.get("compile_mode", "default"))


def test_gpu_check_stops_with_one_line_where_there_is_no_gpu(tmp_path):
    # python3 on the PATH is this interpreter (CPU torch in CI): a clear line, no results folder.
    wrapper = tmp_path / "python3"  # a wrapper, not a link: a link outside the venv loses the venv
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "OUT": str(tmp_path / "out")}
    result = subprocess.run(["bash", str(GPU_CHECK)], capture_output=True, text=True, env=env, timeout=120)
    if result.returncode == 0:
        pytest.skip("a CUDA GPU is present: the script ran")
    assert result.returncode == 1 and result.stderr.strip().startswith("gpu_check: torch"), result.stderr
    assert "sees no CUDA GPU" in result.stderr and not (tmp_path / "out").exists()


def test_ctrl_c_is_one_line_saying_how_to_go_on(tmp_path):
    import signal
    import time

    env = {**os.environ, "MINILM_RUNS": str(tmp_path), "MINILM_BUDGET": "smoke"}
    # A suite started in the background of a script inherits SIGINT ignored, and Python keeps it so:
    # the child gets the default action back, as a command typed in a terminal has.
    process = subprocess.Popen([sys.executable, "-m", "minilm", "bench", "pretrain", "--config", "baby",
                                "--seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(4)  # past start-up, into the run
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        # Start-up was slow and the signal landed in an import lock's weakref callback, where Python
        # drops it ("Exception ignored in: ... _get_module_lock"): a user presses Ctrl-C again.
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        err = err.split("KeyboardInterrupt: \n", 1)[-1]
    assert process.returncode == 130
    assert err.strip() == "minilm: interrupted; the same command run again continues a training stage from its last checkpoint"


# -- one generic handler for every stage ---------------------------------------------------------

STAGE_PROTOCOL = ("COMMAND", "CHAPTER", "PRODUCT", "HELP", "path", "artifact", "report")  # FLAGS + configure: optional


def test_every_stage_module_is_in_the_pipeline_and_has_a_command():
    import minilm.stages
    from minilm.pipeline import SECTIONS, STAGES

    modules = sorted(p.stem for p in Path(minilm.stages.__file__).parent.glob("*.py")
                     if p.stem not in ("__init__", "artifact"))
    assert sorted(stage.__name__.rsplit(".", 1)[1] for stage in STAGES) == modules
    assert list(SECTIONS) == ["corpus", *(stage.COMMAND for stage in STAGES)]
    help_text = run_cli("--help").stdout
    for stage in STAGES:
        assert all(hasattr(stage, name) for name in STAGE_PROTOCOL), stage.__name__
        assert hasattr(stage, "FLAGS") == hasattr(stage, "configure"), stage.__name__
        assert f"minilm {stage.COMMAND} " in help_text and stage.HELP in help_text
    assert [int(stage.CHAPTER) for stage in STAGES] == sorted(int(stage.CHAPTER) for stage in STAGES)


def test_the_readme_lists_the_commands_of_the_one_list():
    from minilm.cli import README_COMMANDS, commands_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split(README_COMMANDS[0], 1)[1].split(README_COMMANDS[1], 1)[0].strip()
    assert block == commands_markdown(), ("the README's command table is stale: run python -c \"from pathlib import "
                                          "Path; from minilm.cli import write_readme_commands; "
                                          "write_readme_commands(Path('README.md'))\"")


def test_a_new_stage_gets_its_command_without_a_handler(monkeypatch, capsys):
    import types

    import minilm.cli
    from minilm.core.config import get_budget
    from minilm.stages.artifact import with_settings

    built = []
    stage = types.SimpleNamespace(
        COMMAND="reward", CHAPTER="09", PRODUCT="reward model", HELP="train a reward model",
        FLAGS={"steps": (int, "optimizer steps"), "lr": (float, "learning rate")},
        configure=lambda budget, **changes: with_settings(budget, "sft", **changes),
        path=lambda budget: Path("runs") / f"reward-{budget.name}.pt",
        artifact=lambda budget, progress=True, device=None: built.append((budget, device)) or {"accuracy": 0.75},
        report=lambda result: f"accuracy {result['accuracy']:.0%}")
    monkeypatch.setattr(minilm.cli, "STAGES", (*minilm.cli.STAGES, stage))
    assert ("minilm reward", "train a reward model (ch. 09)") in minilm.cli.command_lines()
    main(["--budget", "smoke", "reward", "--steps", "3", "--lr", "0.01", "--device", "cpu"])
    out = capsys.readouterr().out
    assert out == "reward model: runs/reward-smoke.pt\naccuracy 75%\n"
    budget, device = built[0]
    assert (budget.sft.steps, budget.sft.lr, device) == (3, 0.01, "cpu")
    assert budget.sft.warmup_steps == get_budget("smoke").sft.warmup_steps  # short_warmup was not asked for


def test_the_stage_commands_keep_their_tools_and_flags():
    from minilm.cli import _cmd_stage, _cmd_tokenizer_encode, _cmd_tokenizer_train, build_parser
    from minilm.core.config import get_budget
    from minilm.stages import data, pretrain, sft

    parser = build_parser()
    assert parser.parse_args(["data", "build"]).func is _cmd_stage and parser.parse_args(["data"]).stage is data
    assert parser.parse_args(["tokenizer", "train", "--vocab-size", "300"]).func is _cmd_tokenizer_train
    assert parser.parse_args(["tokenizer", "encode", "hi"]).func is _cmd_tokenizer_encode
    args = parser.parse_args(["pretrain", "--depth", "2", "--batch-size", "4", "--seq-len", "32"])
    assert (args.stage, args.depth, args.batch_size, args.seq_len) == (pretrain, 2, 4, 32)
    with pytest.raises(SystemExit):
        parser.parse_args(["sft", "--chat-limit", "0"])  # a count: argparse's one-line error
    budget = sft.configure(get_budget("smoke"), chat_data="chats.json")
    assert (budget.sft.chat_dataset, budget.sft.chat_conversations) == ("chats.json", 1000)
