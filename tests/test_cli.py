"""The `minilm` command line: stages listed, clear one-line errors, real outputs."""

import json
import os
import subprocess
import sys

import pytest

from minilm.cli import main


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
    assert set(result) == {"config", "seconds", "tokens_per_s", "val_bpb", "mfu", "device"}
    assert result["config"]["vocab_size"] < 120 and result["config"]["steps"] >= 1  # characters, as nanoGPT's run
    assert 0 < result["seconds"] < 30 and result["tokens_per_s"] > 0 and 1.0 < result["val_bpb"] < 9.0
    with pytest.raises(ValueError, match="config="):
        bench_pretrain("huge")
