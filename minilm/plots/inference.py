"""Plots and widgets of chapter 06 (inference): how sampling settings reshape the next-token
distribution, the attention mask of a left-padded batch, and throughput curves.

Every figure has a title, axis labels and units; every function returns its axes (or widget).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..inference.generate import filtered_probs


def token_label(tokenizer, token_id: int) -> str:
    """A token as a short readable label: spaces as '␣', newlines as '⏎'.

    >>> from minilm.text.tokenizer import Tokenizer
    >>> token_label(Tokenizer.train("ab ab", vocab_size=300), ord(" "))
    "'␣'"
    """
    return repr(tokenizer.decode([token_id]).replace(" ", "␣").replace("\n", "⏎"))


def entropy_bits(probs: torch.Tensor) -> float:
    """Entropy of one distribution, in bits (0 log 0 counts as 0).

    >>> entropy_bits(torch.tensor([0.5, 0.25, 0.25, 0.0]))
    1.5
    """
    p = probs[probs > 0].double()
    return max(0.0, float(-(p * p.log2()).sum()))  # rounding can leave -0.0 for a one-hot distribution


def plot_distribution(tokenizer, logits: torch.Tensor, setting: dict | None = None, top: int = 12, ax=None,
                      title: str | None = None):
    """The model's next-token probabilities (grey) and what ``setting`` (keyword arguments of
    :func:`minilm.inference.generate.filtered_probs`) leaves of them (colour), for the ``top`` most likely tokens.

    ``logits``: (vocab,) for one position. The title gives how many tokens keep a chance and the
    entropy of the sampled distribution.
    """
    import matplotlib.pyplot as plt

    setting = setting or {}
    raw = filtered_probs(logits[None], temperature=1.0)[0]
    shaped = filtered_probs(logits[None], **{"temperature": 1.0, **setting})[0]
    order = raw.argsort(descending=True)[:top].tolist()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    x = range(len(order))
    ax.bar(x, [raw[i].item() for i in order], color="0.8", label="model (T=1)")
    ax.bar(x, [shaped[i].item() for i in order], width=0.5, color="C0", label="sampled from")
    ax.set_xticks(list(x), [token_label(tokenizer, i) for i in order], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("probability")
    described = ", ".join(f"{k}={v}" for k, v in setting.items()) or "T=1, no filter"
    kept = int((shaped > 0).sum())
    ax.set_title(title or f"{described}\n{kept:,} tokens possible, entropy {entropy_bits(shaped):.2f} bits", fontsize=9)
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_sampling_settings(tokenizer, logits: torch.Tensor, settings: dict[str, dict], top: int = 10, columns: int = 3):
    """One panel per named setting (see :func:`plot_distribution`), side by side."""
    import matplotlib.pyplot as plt

    rows = math.ceil(len(settings) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for ax, (name, setting) in zip(axes.flat, settings.items()):
        shaped = filtered_probs(logits[None], **{"temperature": 1.0, **setting})[0]
        plot_distribution(tokenizer, logits, setting, top, ax, title=f"{name}: {int((shaped > 0).sum()):,} tokens "
                                                                    f"possible, {entropy_bits(shaped):.2f} bits")
    for ax in list(axes.flat)[len(settings):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("How sampling settings reshape one next-token distribution")
    fig.tight_layout()
    return axes


def sampling_explorer(tokenizer, logits: torch.Tensor, top: int = 15):
    """Sliders for temperature, top-k, top-p and min-p over one next-token distribution.

    The plot is drawn once when the widget is made, so the cell also runs without a live kernel
    (for example under nbval or nbconvert); moving a slider redraws it.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    temperature = widgets.FloatSlider(value=1.0, min=0.05, max=2.0, step=0.05, description="temperature")
    top_k = widgets.IntSlider(value=0, min=0, max=50, description="top-k (0=off)")
    top_p = widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="top-p")
    min_p = widgets.FloatSlider(value=0.0, min=0.0, max=0.5, step=0.01, description="min-p")
    out = widgets.Output()

    def render(_=None):
        setting = {"temperature": round(temperature.value, 2)}
        if top_k.value:
            setting["top_k"] = top_k.value
        if top_p.value < 1:
            setting["top_p"] = round(top_p.value, 2)
        if min_p.value > 0:
            setting["min_p"] = round(min_p.value, 2)
        out.clear_output(wait=True)
        with out:
            ax = plot_distribution(tokenizer, logits, setting, top)
            ax.legend(fontsize=8)
            plt.tight_layout()
            display(ax.figure)
            plt.close(ax.figure)

    for slider in (temperature, top_k, top_p, min_p):
        slider.observe(render, names="value")
    render()
    return widgets.VBox([widgets.HBox([temperature, top_k]), widgets.HBox([top_p, min_p]), out])


def plot_padding_mask(mask: torch.Tensor, pad: Sequence[int], axes=None):
    """The attention masks (B, 1, T, T) of a left-padded batch, one panel per row (dark = visible)."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, mask.shape[0], figsize=(3.2 * mask.shape[0], 3.2), squeeze=False)
        axes = axes[0]
    for b, ax in enumerate(axes):
        ax.imshow(mask[b, 0].int().numpy(), cmap="Greys", vmin=0, vmax=1)
        ax.set(title=f"row {b}: {int(pad[b])} padding slots", xlabel="key slot", ylabel="query slot")
    return axes


def plot_throughput(x: Sequence[float], series: dict[str, Sequence[float]], xlabel: str, title: str, ax=None,
                    log_x: bool = True):
    """Tokens per second against ``x`` (sequence length, batch size, ...), one line per series."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in series.items():
        ax.plot(x, values, "o-", label=name)
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set(xlabel=xlabel, ylabel="generated tokens per second", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
