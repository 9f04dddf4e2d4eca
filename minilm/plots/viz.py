"""Plots and widgets the notebooks share (figures always carry a title, axis labels and units)."""

from __future__ import annotations

import html
from typing import Sequence

# Pastel colours that stay readable under black text, cycled over token boundaries.
TOKEN_COLOURS = ("#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff")


def tokens_html(pieces: Sequence[str], ids: Sequence[int] | None = None) -> str:
    """Text with each token on its own coloured background (hover shows the id).

    Spaces stay spaces (the coloured background shows where they are); a newline is drawn as '↵'
    followed by a line break.

    >>> tokens_html(["Hi", " there"], [1, 2]).count("<span")
    2
    """
    if ids is not None and len(ids) != len(pieces):
        raise ValueError(f"tokens_html got {len(pieces)} pieces and {len(ids)} ids: give one id per piece")
    spans = []
    for n, piece in enumerate(pieces):
        colour = TOKEN_COLOURS[n % len(TOKEN_COLOURS)]
        title = f' title="id {ids[n]}"' if ids is not None else ""
        text = html.escape(piece).replace("\n", "↵<br>")
        spans.append(f'<span style="background:{colour};color:#000;white-space:pre"{title}>{text}</span>')
    return '<div style="font-family:monospace;line-height:1.9">' + "".join(spans) + "</div>"


def show_tokens(tokenizer, text: str) -> None:
    """Display ``text`` with coloured token boundaries in a notebook."""
    from IPython.display import HTML, display

    ids = tokenizer.encode(text)
    display(HTML(tokens_html(tokenizer.token_strings(ids), ids) + f"<small>{len(ids)} tokens, "
                 f"{len(text.encode('utf-8'))} bytes</small>"))


def tokenizer_explorer(tokenizers: dict, initial: str = "Hello world! 12345 strawberry"):
    """An ipywidgets text box: type text, see its tokens under every tokenizer given."""
    import ipywidgets as widgets
    from IPython.display import HTML, display

    box = widgets.Textarea(value=initial, description="Text:", layout=widgets.Layout(width="95%", height="70px"))
    out = widgets.Output()

    def render(_=None):
        out.clear_output()
        with out:
            for name, tok in tokenizers.items():
                ids = tok.encode(box.value)
                display(HTML(f"<b>{html.escape(name)}</b>: {len(ids)} tokens" + tokens_html(tok.token_strings(ids), ids)))

    box.observe(render, names="value")
    render()
    return widgets.VBox([box, out])


def plot_bytes_per_token(vocab_sizes: Sequence[int], values: Sequence[float], references: dict | None = None, ax=None):
    """Compression against vocabulary size (log2 x axis), with reference tokenizers as lines."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    if len(vocab_sizes) != len(values):
        raise ValueError(f"plot_bytes_per_token got {len(vocab_sizes)} vocabulary sizes and {len(values)} values")
    ax.plot(vocab_sizes, values, marker="o", label="ours (BPE on Shakespeare)")
    for n, (name, value) in enumerate((references or {}).items()):
        ax.axhline(value, linestyle="--", color=f"C{n + 1}", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("vocabulary size (tokens, log scale)")
    ax.set_ylabel("bytes per token (held-out plays)")
    ax.set_title("Larger vocabularies compress text better")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_mixture(tokens_per_source: dict, ax=None):
    """Horizontal bars: how many training tokens each source contributes."""
    import matplotlib.pyplot as plt

    # Shares of the total are printed on the bars: they need a positive total of counts.
    if not tokens_per_source or any(not count >= 0 for count in tokens_per_source.values()) \
            or not sum(tokens_per_source.values()) > 0:
        raise ValueError(f"plot_mixture needs token counts >= 0 with a positive total, got {tokens_per_source}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
    names = list(tokens_per_source)
    values = [tokens_per_source[n] / 1e6 for n in names]
    ax.barh(names, values, color=[f"C{i}" for i in range(len(names))])
    total = sum(values)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f}M ({v / total:.0%})", va="center", fontsize=8)
    ax.set_xlabel("training tokens (millions)")
    ax.set_title("The pretraining mixture by source")
    ax.invert_yaxis()
    ax.margins(x=0.25)
    return ax


def plot_training_curves(history: Sequence[dict], title: str = "Pretraining", axes=None):
    """Training loss and validation loss per step (left), validation bits per byte (right).

    ``history`` is ``TrainResult.history``: dicts with ``step``, ``loss`` and, on evaluation
    steps, ``val_loss`` and ``val_bpb``. When the run was measured on validation sets by source
    (``val_<source>_bpb``, see ``minilm.models.train.SourceTokens``), the right panel draws every
    source beside the mixture as trained, the figure the left panel's validation curve is in.
    """
    import matplotlib.pyplot as plt

    missing = [i for i, h in enumerate(history) if "step" not in h or "loss" not in h]
    if missing:
        raise ValueError(f"history[{missing[0]}] has no 'step' or 'loss': plot_training_curves takes "
                         "TrainResult.history")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = [h["step"] for h in history]
    evals = [h for h in history if "val_loss" in h]
    axes[0].plot(steps, [h["loss"] for h in history], lw=1, alpha=0.7, label="training (one batch)")
    sources = sorted(k[4:-4] for k in (evals[0] if evals else {}) if k.startswith("val_") and k.endswith("_bpb")
                     and k != "val_bpb")
    mixture = "validation (the mixture as trained)" if sources else "validation"
    axes[0].plot([h["step"] for h in evals], [h["val_loss"] for h in evals], "o-", label=mixture)
    axes[0].set(title=f"{title}: loss", xlabel="optimizer step", ylabel="cross-entropy (nats / token)")
    axes[0].legend()
    if evals and "val_bpb" in evals[0]:
        axes[1].plot([h["step"] for h in evals], [h["val_bpb"] for h in evals], "o-", color="k", lw=2,
                     label="the mixture as trained" if sources else None)
        for source in sources:
            axes[1].plot([h["step"] for h in evals], [h[f"val_{source}_bpb"] for h in evals], ".-", lw=1, label=source)
        if sources:
            axes[1].legend(fontsize=7)
    axes[1].set(title=f"{title}: validation bits per byte", xlabel="optimizer step", ylabel="bits per byte")
    for ax in axes:
        ax.grid(alpha=0.3)
    return axes


class LiveLossPlot:
    """A training hook that redraws the loss curves in a notebook while ``train`` runs, e.g.
    ``train(model, tokens, cfg, val_tokens=val, hook=LiveLossPlot(), hook_every=20)``."""

    def __init__(self, title: str = "Training"):
        self.title = title
        self.handle = None

    def __call__(self, step: int, model, history: Sequence[dict]) -> dict:
        import matplotlib.pyplot as plt
        from IPython.display import display

        axes = plot_training_curves(history, self.title)
        figure = axes[0].figure
        if self.handle is None:
            self.handle = display(figure, display_id=True)
        else:
            self.handle.update(figure)
        plt.close(figure)
        return {}
