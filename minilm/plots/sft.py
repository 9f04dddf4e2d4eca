"""Figures of chapter 08 (SFT): eval accuracy per category, hallucination and false refusals.

Each function takes ``{model name: minilm.evals.chat_eval.run_eval result}``, draws on the axes it is given
(or new ones) and returns them; titles, axis labels and units are always set. Error bars are the
Wilson 95% intervals the results carry (:func:`minilm.evals.chat_eval.wilson_interval`).
"""

from __future__ import annotations

from ..evals.chat_eval import CATEGORIES

CATEGORY_LABELS = {"facts": "facts\n(seen people)", "unknown": "unknown\n(refuse)", "arithmetic": "arithmetic",
                   "arithmetic_worked": "arithmetic\n(worked)", "letters": "letters", "format": "format"}


def _error_bars(entries: list[dict]) -> list[list[float]]:
    """Matplotlib's ``yerr`` (distances below and above each bar, in percent) from the intervals.

    >>> _error_bars([{"accuracy": 0.5, "ci_low": 0.2, "ci_high": 0.9}])
    [[30.0], [40.0]]
    """
    below = [round(100 * (e["accuracy"] - e["ci_low"]), 6) for e in entries]
    above = [round(100 * (e["ci_high"] - e["accuracy"]), 6) for e in entries]
    return [below, above]


def _grouped_bars(ax, groups: list[str], series: dict[str, list[dict]], title: str, ylabel: str):
    """One group of bars per entry of ``groups``, one coloured bar per series, with error bars."""
    import numpy as np

    if not series:
        raise ValueError("nothing to plot: give {model name: run_eval result}")
    x = np.arange(len(groups))
    width = 0.8 / len(series)
    for n, (name, entries) in enumerate(series.items()):
        offset = (n - (len(series) - 1) / 2) * width
        ax.bar(x + offset, [100 * e["accuracy"] for e in entries], width, yerr=_error_bars(entries), capsize=3,
               label=name, color=f"C{n}")
    ax.set_xticks(x, groups, fontsize=8)
    ax.set(title=title, ylabel=ylabel, ylim=(0, 105))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return ax


def plot_eval_bars(results: dict[str, dict], ax=None, title: str = "Accuracy per eval category"):
    """Accuracy (%) per category and format compliance: one group of bars per category, one bar
    per model (legend), Wilson 95% intervals as error bars."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.8))
    names = [*CATEGORIES, "format"]
    series = {model: [r["categories"][c] for c in CATEGORIES] + [r["format"]] for model, r in results.items()}
    sizes = sorted({e["n"] for entries in series.values() for e in entries[:-1]})
    size = f"n = {sizes[0]} per category" if len(sizes) == 1 else f"n = {sizes[0]}-{sizes[-1]} per category"
    ax = _grouped_bars(ax, [CATEGORY_LABELS[c] for c in names], series, f"{title} ({size}, 95% intervals)",
                       "accuracy (% of questions)")
    return ax


def plot_refusals(results: dict[str, dict], ax=None):
    """Hallucination rate (held-out people: a value named instead of a refusal) and false-refusal
    rate (seen people: "I don't know" to a known fact), in %, one bar per model; lower is better."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    groups = ["hallucination\n(unknown people)", "false refusal\n(seen people)"]
    series = {model: [r["rates"]["hallucination"], r["rates"]["false_refusal"]] for model, r in results.items()}
    return _grouped_bars(ax, groups, series, "Hallucinations and false refusals (lower is better, 95% intervals)",
                         "rate (% of questions)")


def plot_size_sweep(results: dict[int, dict], steps: int | None = None, ax=None):
    """The data-size sweep: accuracy (%) per category and format compliance against the number of
    SFT conversations (log scale), one line per category with its Wilson 95% band.

    ``results`` is ``{conversations: run_eval result}``; ``steps`` (the same for every size) goes
    into the title, since small sets are seen many times over in those steps.
    """
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("nothing to plot: give {conversations: run_eval result}")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    sizes = sorted(results)
    lines = {c: [results[s]["categories"][c] for s in sizes] for c in CATEGORIES}
    lines["format"] = [results[s]["format"] for s in sizes]
    for n, (name, entries) in enumerate(lines.items()):
        style = {"color": "black", "linestyle": "--", "linewidth": 2} if name == "format" else {"color": f"C{n}"}
        label = CATEGORY_LABELS[name].replace("\n", " ")
        ax.plot(sizes, [100 * e["accuracy"] for e in entries], marker="o", label=label, **style)
        ax.fill_between(sizes, [100 * e["ci_low"] for e in entries], [100 * e["ci_high"] for e in entries],
                        color=style["color"], alpha=0.08)
    trained = f", {steps} steps each" if steps else ""
    ax.set(xscale="log", title=f"SFT data size against accuracy per category (95% bands{trained})",
           xlabel="SFT conversations (log scale)", ylabel="accuracy (% of questions)", ylim=(0, 105))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return ax


def plot_refusal_tradeoff(results: dict[str, dict], ax=None):
    """Each SFT run (``{run name: run_eval result}``) as a point: false refusals on seen people (x)
    against hallucinations on never-seen people (y), in %, with their 95% Wilson intervals. The
    ideal is the origin; a run down and to the left of another beats it on both."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.2))
    for n, (name, r) in enumerate(results.items()):
        x, y = r["rates"]["false_refusal"], r["rates"]["hallucination"]
        ax.errorbar(100 * x["accuracy"], 100 * y["accuracy"], fmt="o", color=f"C{n}", capsize=3, label=name,
                    xerr=[[100 * (x["accuracy"] - x["ci_low"])], [100 * (x["ci_high"] - x["accuracy"])]],
                    yerr=[[100 * (y["accuracy"] - y["ci_low"])], [100 * (y["ci_high"] - y["accuracy"])]])
    ax.set(title="Hallucination against false refusal (95% intervals)", xlim=(-2, 102), ylim=(-2, 102),
           xlabel="false refusals, seen people (% of questions)",
           ylabel="hallucinations, never-seen people (% of questions)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_refusal_study(results: dict[str, dict], ax=None):
    """Hallucination rate (held-out people), false-refusal rate (seen people) and facts accuracy (seen
    people), in %, one bar per SFT run (``{run name: run_eval result}``), 95% intervals."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8))
    groups = ["hallucination\n(unknown people, lower\nis better)", "false refusal\n(seen people, lower\nis better)",
              "facts accuracy\n(seen people, higher\nis better)"]
    series = {model: [r["rates"]["hallucination"], r["rates"]["false_refusal"], r["categories"]["facts"]]
              for model, r in results.items()}
    return _grouped_bars(ax, groups, series, "Refusal data: hallucinations, false refusals and facts (95% intervals)",
                         "rate (% of questions)")
