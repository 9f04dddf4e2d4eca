"""Chapter 03's figures: attention heatmaps, FLOPs by component, ablation loss curves.

Every figure has a title, axis labels and units, like the rest of ``minilm.plots.viz``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def plot_attention_heads(probs, labels: Sequence[str], title: str, axes=None, max_heads: int = 8):
    """Heatmaps of attention probabilities (n_head, T, T) of one layer, one panel per head.

    Rows are query positions (the token doing the looking), columns are key positions; ``labels``
    are the T tokens, drawn on both axes. Returns the array of axes.
    """
    import matplotlib.pyplot as plt

    probs = np.asarray(probs)
    heads = min(len(probs), max_heads)
    T = probs.shape[-1]
    if len(labels) != T:
        raise ValueError(f"{len(labels)} labels for {T} positions")
    if axes is None:
        size = min(3.6, 14 / heads)
        _, axes = plt.subplots(1, heads, figsize=(size * heads, size + 0.6), squeeze=False)
        axes = axes[0]
    for h in range(heads):
        ax = axes[h]
        image = ax.imshow(probs[h], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"head {h}", fontsize=9)
        ax.set_xticks(range(T), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(T), labels if h == 0 else [""] * T, fontsize=6)
        ax.set_xlabel("key (attended to)", fontsize=8)
    axes[0].set_ylabel("query (looking)", fontsize=8)
    axes[0].figure.colorbar(image, ax=list(axes[:heads]), fraction=0.02, pad=0.01, label="attention probability")
    axes[0].figure.suptitle(title, fontsize=10)
    return axes


def plot_flops_by_component(flops: dict[str, dict[str, float]], ax=None, title: str | None = None):
    """Stacked horizontal bars: each model's training FLOPs per token, split into components, as shares.

    ``flops`` maps a model name to {component: FLOPs per token}; the total is written at the bar's end.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.5 * len(flops) + 1.6))
    names = list(flops)
    components = list(dict.fromkeys(c for parts in flops.values() for c in parts))
    left = np.zeros(len(names))
    for i, component in enumerate(components):
        values = np.array([flops[n].get(component, 0.0) for n in names])
        totals = np.array([sum(flops[n].values()) for n in names])
        share = 100 * values / totals
        ax.barh(names, share, left=left, color=f"C{i}", label=component)
        left += share
    for y, n in enumerate(names):
        ax.text(101, y, f"{sum(flops[n].values()) / 1e6:,.1f} M", va="center", fontsize=8)
    ax.set_xlim(0, 118)
    ax.set_xlabel("share of training FLOPs per token (%); total at the right, in MFLOPs")
    ax.set_title(title or "Where a training step's FLOPs go")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.45, -0.28), ncol=len(components), frameon=False)
    return ax


def ema(values: Sequence[float], alpha: float = 0.1) -> np.ndarray:
    """Exponential moving average (bias-corrected, so the first value is not pulled towards 0).

    >>> ema([1.0, 1.0, 1.0]).round(6).tolist()
    [1.0, 1.0, 1.0]
    """
    out, avg = [], 0.0
    for n, v in enumerate(values, start=1):
        avg = (1 - alpha) * avg + alpha * v
        out.append(avg / (1 - (1 - alpha) ** n))
    return np.array(out)


def plot_loss_curves(runs, tokens_per_step: int, ax=None, title: str = "Training loss of each variant (every seed)",
                     alpha: float = 0.1):
    """Training loss (EMA-smoothed) against tokens seen, for ``minilm.studies.ablation.AblationRun`` objects:
    one colour per variant, one line per seed (the first seed solid and labelled, the others thin)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    colours: dict[str, str] = {}
    for run in runs:
        first = run.name not in colours
        colour = colours.setdefault(run.name, f"C{len(colours)}")
        tokens = np.array([h["step"] for h in run.history]) * tokens_per_step / 1e3
        ax.plot(tokens, ema(run.losses, alpha), "-", color=colour, lw=1.5 if first else 0.6,
                alpha=1.0 if first else 0.6, label=run.name if first else None)
    ax.set_xlabel("training tokens seen (thousands)")
    ax.set_ylabel(f"training loss (nats/token, EMA α={alpha})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_head_summary(stats: dict, keys: Sequence[str] = ("previous", "first"), axes=None, title: str | None = None):
    """One layers x heads grid per statistic of ``minilm.evals.attention_maps.head_summary`` (values in [0, 1])."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys) + 0.8, 3.2), squeeze=False)
        axes = axes[0]
    for ax, key in zip(axes, keys):
        grid = np.asarray(stats[key])
        image = ax.imshow(grid, cmap="magma", vmin=0, vmax=1)
        for (layer, head), value in np.ndenumerate(grid):
            ax.text(head, layer, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="black" if value > 0.5 else "white")
        ax.set_xticks(range(grid.shape[1]))
        ax.set_yticks(range(grid.shape[0]))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_title(f"mean weight on the {key} token", fontsize=9)
    axes[0].figure.colorbar(image, ax=list(axes), fraction=0.03, label="attention probability")
    if title:
        axes[0].figure.suptitle(title, fontsize=10)
    return axes
