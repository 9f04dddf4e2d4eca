"""Progress bars: live in a terminal or notebook, whole lines about every 10% in a log file."""

import io
import re
import sys

import numpy as np
import pytest
import torch
import tqdm as tqdm_package
import tqdm.auto

from minilm.models.gpt import GPT, GPTConfig
from minilm.core.progress import LogBar, is_interactive, progress_bar
from minilm.models.train import TrainConfig, train


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


class JupyterStream(io.StringIO):
    """Stands in for ipykernel's OutStream: not a terminal, but a notebook cell renders '\\r' in place."""


JupyterStream.__module__ = "ipykernel.iostream"


def counts(lines):
    """The n/total of each line."""
    return [re.search(r"\| (\d+/\d+) \[", line).group(1) for line in lines]


def lines_of(text):
    assert "\r" not in text  # no redrawing: every update is a line of its own
    assert text.endswith("\n")
    return text.splitlines()


def test_a_log_gets_a_line_about_every_ten_percent():
    log = io.StringIO()
    bar = progress_bar(total=1000, desc="steps", file=log)
    for _ in range(1000):
        bar.update()
    bar.close()
    lines = lines_of(log.getvalue())
    assert len(lines) == 11  # the start, then every 100 steps (the last one also closes the bar)
    assert counts(lines) == [f"{n}/1000" for n in range(0, 1001, 100)]
    assert lines[-1].startswith("steps: 100%|##########| 1000/1000 [")


def test_an_iterated_bar_logs_the_same_lines():
    log = io.StringIO()
    assert list(progress_bar(range(1000), desc="docs", file=log)) == list(range(1000))
    lines = lines_of(log.getvalue())
    assert len(lines) == 11 and "1000/1000" in lines[-1]


def test_a_bar_closed_early_logs_where_it_stopped_once():
    log = io.StringIO()
    with progress_bar(total=1000, desc="steps", file=log) as bar:
        bar.update(537)
    lines = lines_of(log.getvalue())
    assert len(lines) == 2 and "537/1000" in lines[-1]
    bar.close()  # a second close writes nothing
    assert log.getvalue().splitlines() == lines


def test_a_resumed_bar_logs_every_tenth_of_what_is_left():
    log = io.StringIO()
    with progress_bar(total=1000, initial=600, file=log) as bar:
        for _ in range(400):
            bar.update()
    lines = lines_of(log.getvalue())
    assert counts(lines) == [f"{n}/1000" for n in range(600, 1001, 40)]


def test_the_postfix_and_description_show_on_the_next_line_without_adding_one():
    log = io.StringIO()
    with progress_bar(total=100, desc="train", file=log) as bar:
        for step in range(100):
            bar.set_postfix(loss=f"{5 - step / 100:.3f}", tok_s=f"{12345:,}")  # tqdm would redraw here
            bar.set_description("train", refresh=True)
            bar.set_postfix_str(f"loss={5 - step / 100:.3f}, tok_s=12,345")
            bar.update()
    lines = lines_of(log.getvalue())
    assert len(lines) == 11
    assert lines[5].startswith("train:  50%|#####     | 50/100 [") and lines[5].endswith("loss=4.510, tok_s=12,345]")
    assert lines[-1].endswith("loss=4.010, tok_s=12,345]")


def test_lines_are_never_cut_to_a_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")  # what tqdm would trim stderr's lines to
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    with progress_bar(total=10, desc="a long description of the work") as bar:
        bar.set_postfix(loss="1.234", tokens_per_second="123,456")
        bar.update(10)
    assert lines_of(log.getvalue())[-1].endswith("loss=1.234, tokens_per_second=123,456]")


def test_without_a_total_a_line_every_interval(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(tqdm_package.std, "time", lambda: clock[0])
    log = io.StringIO()
    with progress_bar(desc="timed", file=log, interval=30) as bar:
        for _ in range(100):  # one step a second
            clock[0] += 1.0
            bar.update()
    lines = lines_of(log.getvalue())
    assert [line.split()[1] for line in lines] == ["0it", "30it", "60it", "90it", "100it"]


def test_nested_bars_print_plain_lines():
    log = io.StringIO()
    for _ in progress_bar(range(3), desc="outer", file=log):
        for _ in progress_bar(range(20), desc="inner", file=log, leave=False):
            pass
    text = log.getvalue()
    assert "\x1b" not in text  # no cursor movement
    lines = lines_of(text)
    assert lines[-1].startswith("outer: 100%") and sum(line.startswith("inner: 100%") for line in lines) == 3


def test_a_disabled_bar_writes_nothing():
    log = io.StringIO()
    assert list(progress_bar(range(5), file=log, disable=True)) == list(range(5))
    assert log.getvalue() == ""


def test_a_terminal_gets_the_usual_tqdm_bar():
    out = Terminal()
    bar = progress_bar(range(1000), desc="steps", file=out)
    assert type(bar) is tqdm_package.tqdm
    assert list(bar) == list(range(1000))
    assert out.getvalue().startswith("\rsteps:   0%|")  # redrawn in place


def test_a_notebook_keeps_its_bars():
    cell = JupyterStream()
    assert is_interactive(cell) and not cell.isatty()
    assert type(progress_bar(range(3), file=cell)) is tqdm_package.tqdm  # the text bar
    assert type(progress_bar(range(3), file=cell, notebook=True)) is tqdm.auto.tqdm  # a widget in Jupyter


def closed_stream():
    stream = io.StringIO()
    stream.close()
    return stream


@pytest.mark.parametrize("stream", [io.StringIO(), None, object(), closed_stream()])
def test_anything_but_a_terminal_or_notebook_gets_log_lines(stream):
    assert not is_interactive(stream)


def test_the_default_stream_is_stderr(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(progress_bar(range(3)), LogBar)
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert not isinstance(progress_bar(range(3)), LogBar)


def tiny_training(steps=40):
    torch.manual_seed(0)
    model = GPT(GPTConfig.modern(vocab_size=32, block_size=16, n_layer=1, n_embd=16, n_head=2))
    tokens = np.tile(np.arange(32, dtype=np.uint16), 40)
    cfg = TrainConfig(steps=steps, batch_size=2, seq_len=16, warmup_steps=2, eval_every=0)
    return train(model, tokens, cfg, progress=True, log_every=5)


def test_training_logs_ten_lines_with_the_loss_and_its_last_step(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)  # as `minilm pipeline > log 2>&1` has it
    tiny_training(steps=40)
    lines = lines_of(log.getvalue())
    assert len(lines) == 11 and all(line.startswith("train: ") for line in lines)
    assert "40/40" in lines[-1] and "loss=" in lines[-1] and "tok_s=" in lines[-1]


def test_training_in_a_terminal_redraws_its_bar_to_the_last_step(monkeypatch):
    out = Terminal()
    monkeypatch.setattr(sys, "stderr", out)
    tiny_training(steps=40)
    assert out.getvalue().startswith("\rtrain:   0%|") and "40/40" in out.getvalue().rsplit("\r", 1)[-1]
