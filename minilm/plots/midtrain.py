"""Figures of chapter 07 (mid-training): annealing curves, tool-use accuracy, growing a model.

Each function draws on the axes it is given (or new ones) and returns them; titles, axis labels
and units are always set.
"""

from __future__ import annotations

RUN_LABELS = {"continue": "continue (base mix)", "anneal": "anneal (mid-training mix)"}


def _smooth(values: list[float], window: int = 5) -> list[float]:
    """Running mean over the last ``window`` values (one training batch is noisy).

    >>> _smooth([1.0, 3.0, 5.0], window=2)
    [1.0, 2.0, 4.0]
    """
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def plot_anneal_curves(summary: dict, base_history: list[dict] | None = None, axes=None):
    """Both runs: training loss (smoothed) and validation loss against step, learning rate below.

    The validation points are the training loop's periodic evaluation (the first ``eval_tokens``
    of the validation split); ``base_history`` (the pretraining history) adds the base model's
    last such point at step 0.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    start = None
    if base_history:
        evals = [h for h in base_history if "val_loss" in h]
        start = evals[-1]["val_loss"] if evals else None
    for n, (run, record) in enumerate(summary["runs"].items()):
        history = record["history"]
        colour = f"C{n}"
        label = RUN_LABELS.get(run, run)
        axes[0].plot([h["step"] for h in history], _smooth([h["loss"] for h in history]), color=colour, label=label)
        evals = [h for h in history if "val_loss" in h]
        steps = ([0] if start is not None else []) + [h["step"] for h in evals]
        values = ([start] if start is not None else []) + [h["val_loss"] for h in evals]
        axes[1].plot(steps, values, "o-", color=colour, label=label)
        axes[2].plot([h["step"] for h in history], [h["lr"] for h in history], color=colour, label=label)
    axes[0].set(title="Training loss (running mean of 5 logs)", xlabel="mid-training step",
                ylabel="cross-entropy (nats / token)")
    axes[1].set(title="Validation loss (periodic evaluation)", xlabel="mid-training step",
                ylabel="cross-entropy (nats / token)")
    axes[2].set(title="Learning rate: warmup, then linear to zero", xlabel="mid-training step", ylabel="learning rate")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return axes


def plot_anneal_sources(summary: dict, base_history: list[dict] | None = None, axes=None):
    """Validation bits per byte of every pretraining source against the mid-training step, both
    runs side by side (the loop's periodic evaluation); ``base_history`` adds the base model's last
    evaluation at step 0."""
    import matplotlib.pyplot as plt

    runs = summary["runs"]
    sources = list(next(iter(runs.values()))["val_sources"])
    if axes is None:
        _, axes = plt.subplots(1, len(sources), figsize=(2.9 * len(sources), 3.0), sharex=True)
    last = [h for h in (base_history or []) if "val_loss" in h][-1:]
    for ax, source in zip(axes, sources):
        key = f"val_{source}_bpb"
        for n, (run, record) in enumerate(runs.items()):
            points = [(0, h[key]) for h in last if key in h] + [(h["step"], h[key]) for h in record["history"] if key in h]
            ax.plot(*zip(*points), "o-", ms=3, color=f"C{n}", label=RUN_LABELS.get(run, run))
        ax.set(title=source, xlabel="mid-training step", ylabel="bits per byte")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[0].figure.suptitle("Validation by source (pretraining's held-out text), periodic evaluation")
    return axes


def plot_comparison(comparison: dict, names: dict | None = None, ax=None):
    """Annealed minus continued for every probe, in percentage points, with 95% paired bootstrap
    intervals over the questions (the control study's ``comparison``): a bar that crosses zero is a
    difference the evaluation cannot tell from noise."""
    import matplotlib.pyplot as plt

    names = names or {}
    keys = [k for k in comparison if not k.startswith("val_")]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 + 0.55 * len(keys)))
    for y, key in enumerate(keys):
        d = comparison[key]
        colour = {"higher": "C2", "lower": "C3"}.get(d["verdict"], "C7")
        ax.errorbar(100 * d["value"], y, xerr=[[100 * (d["value"] - d["low"])], [100 * (d["high"] - d["value"])]],
                    fmt="o", color=colour, capsize=4)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(keys)), [names.get(k, k) for k in keys])
    ax.invert_yaxis()
    ax.set(title="Annealed minus continued (95% interval over the questions)",
           xlabel="difference in accuracy (percentage points)")
    ax.grid(alpha=0.3, axis="x")
    return ax


def plot_position_loss(curves: dict[str, list[float]], trained: int, ax=None):
    """Mean loss at each position of long windows, one line per model (``{label: losses}``), with
    pretraining's window marked: past it, a model that uses the extra context keeps falling."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6))
    for label, losses in curves.items():
        ax.plot(range(len(losses)), _smooth(list(losses), 8), label=label)
    ax.axvline(trained - 0.5, color="k", ls="--", lw=0.8, label=f"pretraining's window ({trained} tokens)")
    ax.set(title="Loss by position on the held-out plays (running mean of 8 positions)",
           xlabel="position in the window (tokens)", ylabel="cross-entropy (nats / token)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_tool_accuracy(rows: list[dict], ax=None):
    """Accuracy on held-out problems by operand size: without the tool and with the calculator."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6))
    from ..stages.midtrain import OP_NAMES

    labels = [f"{r['digits']}-digit\n{OP_NAMES.get(r['op'], r['op'])}" for r in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [100 * r["without_tool"] for r in rows], 0.4, label="without the tool (answers directly)")
    ax.bar(x + 0.2, [100 * r["with_tool"] for r in rows], 0.4, label="with the calculator")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set(title="Large-number arithmetic after mid-training (held-out problems)", ylabel="accuracy (%)",
           ylim=(0, 105))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return ax


def plot_growth(result, ax=None):
    """Validation loss against training compute: small model, grown model, big model from scratch."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4))
    styles = {"small": ("C0", "small model"), "grown": ("C1", "grown (identity blocks inserted)"),
              "scratch": ("C2", "grown size, from scratch")}
    for name, points in result.curves.items():
        colour, label = styles.get(name, ("C3", name))
        ax.plot([f for f, _ in points], [loss for _, loss in points], "o-", ms=3, color=colour, label=label)
    insertion = result.curves["grown"][0]
    ax.plot([insertion[0]], [insertion[1]], "k*", ms=12, label="insertion: loss unchanged")
    ax.set(title="Growing a model vs training the big one from scratch", xlabel="training compute (FLOPs)",
           ylabel="validation loss (nats / token)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
