"""The course map as data: every chapter, what it builds, what it measures, and whether it exists yet.

Chapter 00 draws this map (``plot_lifecycle_map``) and prints it as a table (``chapters_table``).
Availability is not written down by hand: a chapter is available when its notebook is in the
checkout's ``notebooks/`` folder, so the map updates itself as chapters are added.

>>> len(CHAPTERS), CHAPTERS[0].notebook, CHAPTERS[-1].stage
(15, '00_orientation.ipynb', 'capstone')
>>> chapter(11).title
'RLVR: reinforcement learning with verifiable rewards'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .core.config import BUDGETS, repo_root
from .core.tables import markdown_table

# The lifecycle phases a chapter belongs to, in the order the map's legend lists them.
PHASES = ("all phases", "pre-training", "inference-time", "post-training")


@dataclass(frozen=True)
class Chapter:
    """One chapter of the course: one notebook (plus exercises where it has a from-scratch core).

    number: 0..14, the order to follow.
    notebook: the notebook's planned file name under ``notebooks/`` (any ``NN_*.ipynb`` also counts).
    title: the chapter's title.
    stage: its step of the LLM lifecycle, as the map labels it (e.g. "tokenization", "SFT").
    phase: one of PHASES: "all phases" for the orientation and the capstone; mid-training counts as
        pre-training (the same next-token loss, on chosen data).
    keywords: a few words the map prints under the stage.
    builds: what the chapter implements or runs.
    measures: what the chapter measures and shows.

    >>> chapter(1).code, chapter(1).phase
    ('01', 'pre-training')
    """

    number: int
    notebook: str
    title: str
    stage: str
    phase: str
    keywords: str
    builds: str
    measures: str

    @property
    def code(self) -> str:
        """The two-digit chapter number used in file names and commands ("01")."""
        return f"{self.number:02d}"

    def path(self, notebooks_dir: Path | str | None = None) -> Path | None:
        """Where the notebook is (or would be); None when minilm is installed outside a checkout.

        The planned name wins; if it is missing, a notebook named ``NN_<anything>.ipynb`` is used.
        """
        folder = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
        if folder is None:
            return None
        planned = folder / self.notebook
        if not planned.is_file():
            for other in sorted(folder.glob(f"{self.code}_*.ipynb")):
                return other
        return planned

    def is_available(self, notebooks_dir: Path | str | None = None) -> bool:
        """True when the chapter's notebook exists in ``notebooks_dir`` (default: the checkout's)."""
        path = self.path(notebooks_dir)
        return path is not None and path.is_file()

    @property
    def available(self) -> bool:
        """True when this checkout holds the chapter's notebook (checked on every access)."""
        return self.is_available()


def default_notebooks_dir() -> Path | None:
    """The checkout's ``notebooks/`` folder, or None when minilm is installed elsewhere."""
    root = repo_root()
    return root / "notebooks" if root is not None else None


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(0, "00_orientation.ipynb", "Orientation", "orientation", "all phases",
            "map · budgets · env",
            "the course map, the budget in force, an environment check",
            "torch version, threads, accelerators; this notebook's run time"),
    Chapter(1, "01_tokenization.ipynb", "Tokenization", "tokenization", "pre-training",
            "byte-level BPE",
            "a byte-level BPE tokenizer from scratch: regex pre-tokenization, digit splitting, special tokens",
            "bytes per token against vocabulary size; token counts against GPT-2 and GPT-4 encodings"),
    Chapter(2, "02_data.ipynb", "Data", "data", "pre-training",
            "clean · dedup",
            "cleaning, PII redaction, exact and MinHash/LSH dedup, quality filters, contamination checks, mixtures",
            "documents and tokens each step keeps or removes, with examples"),
    Chapter(3, "03_transformer.ipynb", "The transformer", "transformer", "pre-training",
            "attention · GPT",
            "attention from scratch; one GPT with GPT-2 and modern (RMSNorm, RoPE, SwiGLU, GQA) components",
            "parameter and FLOP counts; the from-scratch snippet equals the package"),
    Chapter(4, "04_pretraining.ipynb", "Pretraining", "pretraining", "pre-training",
            "next-token loss",
            "the training loop: LR schedule, checkpoints, samples while training",
            "loss, perplexity and bits per byte; samples as training goes"),
    Chapter(5, "05_scaling_laws.ipynb", "Scaling laws", "scaling laws", "pre-training",
            "C ≈ 6ND",
            "sweeps of model size and tokens; a Chinchilla fit of L(N, D)",
            "fitted exponents; compute-optimal tokens per parameter"),
    Chapter(6, "06_inference.ipynb", "Inference", "inference", "inference-time",
            "top-p · KV cache",
            "temperature, top-k and top-p sampling; KV cache; batching; int8 weight quantization",
            "KV-cache speed-up; size, speed and quality of int8; few-shot prompting of a base model"),
    Chapter(7, "07_midtraining.ipynb", "Mid-training", "mid-training", "pre-training",
            "context · anneal",
            "a longer context (RoPE extrapolation, interpolation, base); annealing on high-quality data; "
            "calculator tool tokens; growing a model with identity layers",
            "loss by position; loss and task accuracy against a control; tool-use accuracy"),
    Chapter(8, "08_sft.ipynb", "Supervised fine-tuning (SFT)", "SFT", "post-training",
            "chat · loss masks",
            "chat template, loss masking, fine-tuning on conversations; refusals; a model identity",
            "pretrained vs random init; data-size sweep; refusals on unknown facts"),
    Chapter(9, "09_reward_models.ipynb", "Reward models", "reward models", "post-training",
            "Bradley–Terry",
            "a Bradley–Terry reward model trained on preference pairs",
            "pairwise accuracy against the gold judge; length bias"),
    Chapter(10, "10_rlhf.ipynb", "RLHF: PPO and DPO", "RLHF", "post-training",
            "PPO · DPO",
            "PPO with a KL penalty and a value head; DPO; critique-and-revise in miniature",
            "proxy vs gold reward against KL (over-optimization); reward hacking examples"),
    Chapter(11, "11_rlvr.ipynb", "RLVR: reinforcement learning with verifiable rewards", "RLVR",
            "post-training", "GRPO · pass@k",
            "GRPO with verifiable rewards; rejection sampling and STaR",
            "pass@k before and after; reward curves"),
    Chapter(12, "12_distillation.ipynb", "Distillation", "distillation", "post-training",
            "logits · samples",
            "white-box (forward/reverse KL, JSD on logits) and black-box (sequence-level) distillation",
            "student quality per method, side by side"),
    Chapter(13, "13_reasoning.ipynb", "Reasoning traces and test-time compute", "reasoning",
            "inference-time", "CoT · best-of-N",
            "answer-first vs answer-last traces, self-consistency, best-of-N with a verifier, ORM vs PRM",
            "accuracy against tokens spent thinking"),
    Chapter(14, "14_capstone.ipynb", "Capstone", "capstone", "all phases",
            "every stage",
            "the full pipeline at a chosen budget",
            "a report of every stage"),
)

# What each budget is for and how long it takes, as measured on the reference machine (2 CPU cores):
# nbval at smoke, the notebooks' own run times and the pipeline's stage times at laptop (README).
BUDGET_GUIDE = {
    "smoke": ("CI, a quick check", "≤ 90 s on 2 CPU cores", "about a minute"),
    "laptop": ("students on a CPU (default)", "7 s to 10 min once the stages are built; the first open of "
               "04, 07 or 08 trains its stage and studies (13-31 min)", "35 min on 2 cores, through SFT"),
    "gpu": ("one GPU; torchrun for several", "not measured yet", "not measured yet"),
}


def chapter(number: int) -> Chapter:
    """The chapter with this number.

    >>> chapter(8).stage
    'SFT'
    """
    for ch in CHAPTERS:
        if ch.number == number:
            return ch
    raise KeyError(f"no chapter {number!r}: chapters are numbered 0 to {len(CHAPTERS) - 1}")


def chapters_table(notebooks_dir: Path | str | None = None, links: bool = True) -> str:
    """Every chapter as a markdown table: number, title (linked when available), phase, builds, measures.

    >>> "| 14 |" in chapters_table()
    True
    """
    rows = []
    for ch in CHAPTERS:
        available = ch.is_available(notebooks_dir)
        title = f"[{ch.title}]({ch.path(notebooks_dir).name})" if links and available else ch.title
        rows.append([ch.code, title, ch.phase, ch.builds, ch.measures, "available" if available else "coming"])
    return markdown_table(["#", "chapter", "phase", "builds", "measures", "status"], rows)


def _tokens(steps: int, batch_size: int, seq_len: int) -> str:
    """
    >>> _tokens(4000, 32, 64)
    '4,000 steps x 32 x 64 tokens (8.2M tokens)'
    """
    total = steps * batch_size * seq_len
    size = f"{total / 1e3:.0f}k" if total < 1e6 else f"{total / 1e6:.1f}M" if total < 1e7 else f"{total / 1e6:,.0f}M"
    return f"{steps:,} steps x {batch_size} x {seq_len} tokens ({size} tokens)"


# The few settings per stage that say how big a budget is; every setting is in minilm.core.config.BUDGETS.
BUDGET_ROWS = (
    ("corpus", "Shakespeare", lambda b: "all the training plays" if b.corpus_chars == 0
     else f"the first {b.corpus_chars:,} characters"),
    ("tokenizer", "vocabulary", lambda b: f"{b.tokenizer.vocab_size:,}"),
    ("world", "people (held out)", lambda b: f"{b.world.people:,} ({b.world.heldout_people:,})"),
    ("data", "pretraining mix", lambda b: f"{b.data.total_chars / 1e6:g}M characters"),
    ("pretrain", "model", lambda b: f"depth {b.pretrain.depth}, width {64 * b.pretrain.depth}"),
    ("pretrain", "training", lambda b: _tokens(b.pretrain.steps, b.pretrain.batch_size, b.pretrain.seq_len)),
    ("midtrain", "training", lambda b: f"{_tokens(b.midtrain.steps, b.midtrain.batch_size, b.midtrain.context or b.pretrain.seq_len)} "
     f"({b.midtrain.optimizer})"),
    ("sft", "conversations", lambda b: f"{sum(n for _, n in b.sft.mix):,}"),
    ("sft", "training", lambda b: _tokens(b.sft.steps, b.sft.batch_size,
                                          b.sft.context or b.midtrain.context or b.pretrain.seq_len)),
)


def budgets_table(budgets: dict | None = None) -> str:
    """The budgets side by side as markdown: what each is for, how long it takes, then a few rows per
    stage saying how big it is (``BUDGET_ROWS``; every setting is in ``minilm.core.config.BUDGETS``).

    >>> print(budgets_table().splitlines()[-1])
    | sft | training | 12 steps x 8 x 128 tokens (12k tokens) | 300 steps x 8 x 256 tokens (614k tokens) | 1,000 steps x 16 x 2048 tokens (33M tokens) |
    """
    budgets = budgets if budgets is not None else BUDGETS
    names = list(budgets)
    rows = [["", label] + [BUDGET_GUIDE.get(n, ("",) * 3)[i] for n in names]
            for i, label in enumerate(("who", "each notebook", "whole pipeline"))]
    rows += [[stage, label] + [describe(budgets[n]) for n in names] for stage, label, describe in BUDGET_ROWS]
    return markdown_table(["stage", "", *names], rows)


def plot_lifecycle_map(ax=None, notebooks_dir: Path | str | None = None):
    """The course map of chapter 00: :func:`minilm.plots.course.plot_lifecycle_map` of these chapters,
    with the command of each pipeline stage (:data:`minilm.pipeline.STAGES`) in its chapter's box."""
    from .pipeline import STAGES
    from .plots.course import plot_lifecycle_map as draw

    commands = {int(stage.CHAPTER): f"minilm {stage.COMMAND}" for stage in STAGES}
    return draw(CHAPTERS, PHASES, ax, notebooks_dir, commands=commands)


def stages_table() -> str:
    """The pipeline's stages (:data:`minilm.pipeline.STAGES`, in order) as a markdown table: the
    chapter, the command that builds the stage's product, the product, what the command does.

    >>> print(stages_table().splitlines()[2])
    | 01 | `minilm tokenizer` | tokenizer | train (or load) the budget's byte-level BPE tokenizer |
    """
    from .pipeline import STAGES

    rows = [[stage.CHAPTER, f"`minilm {stage.COMMAND}`", stage.PRODUCT, stage.HELP] for stage in STAGES]
    return markdown_table(["chapter", "command", "builds", "what it does"], rows)


__all__ = ["BUDGET_GUIDE", "BUDGET_ROWS", "CHAPTERS", "Chapter", "PHASES", "budgets_table", "chapter", "chapters_table",
           "default_notebooks_dir", "plot_lifecycle_map", "stages_table"]
