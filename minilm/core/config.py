"""Configuration: validated dataclasses and the three compute budgets.

Every stage of the course reads its sizes from a *budget*, so the same notebook or CLI command runs
in seconds in CI, in minutes on a student's laptop and for hours on a GPU, without editing code:

- ``smoke``  -- CI and quick checks: every notebook in about a minute on 2 CPU cores.
- ``laptop`` -- the default for students: a few minutes per notebook, results that mean something.
- ``gpu``    -- one or more GPUs: the same code at a larger scale.

The budget is chosen by, in order: an explicit name (``--budget`` on the CLI), the ``MINILM_BUDGET``
environment variable, ``CI=true`` (which implies ``smoke``), and finally ``laptop``.

>>> get_budget("smoke").name
'smoke'
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .checks import ConfigError, check_choice, check_learning_rate, check_range

BUDGET_NAMES = ("smoke", "laptop", "gpu")
DEFAULT_BUDGET = "laptop"

# Largest vocabulary we allow: token ids must fit in uint16 so that token shards stay compact.
MAX_VOCAB_SIZE = 65536


@dataclass(frozen=True)
class TokenizerConfig:
    """How to train the byte-level BPE tokenizer.

    vocab_size: total number of ids, special tokens included (256 byte tokens + merges + specials).
    digit_group: how many digits one pre-token may hold. 1 splits every digit (2025 -> 2,0,2,5, as
        Llama does; arithmetic becomes learnable digit by digit); 3 is GPT-4's pattern.
    """

    vocab_size: int = 4096
    digit_group: int = 1

    def __post_init__(self):
        check_range("vocab_size", self.vocab_size, 257, MAX_VOCAB_SIZE)
        check_range("digit_group", self.digit_group, 1, 3)


@dataclass(frozen=True)
class WorldConfig:
    """Size of the synthetic tiny world (see minilm.text.world).

    people: people whose biographies appear in pretraining text (their facts can be learned).
    heldout_people: people generated the same way who never appear (questions about them should
        be answered "I don't know").
    bios_per_person: paraphrased biographies per person (knowledge augmentation).
    arithmetic_docs / countdown_docs / spelling_docs: documents of worked problems in pretraining.
    items_per_doc: problems per arithmetic/countdown/spelling document.
    op_weights: relative frequency of addition, subtraction and multiplication problems.
    direct_fraction: share of arithmetic problems written as bare equations ("47 + 38 = 85"); the
        rest are worked, digit-by-digit solutions.
    three_digit_fraction: share of addition and subtraction problems with 3-digit operands (the rest
        have 2 digits).
    """

    people: int = 120
    heldout_people: int = 40
    bios_per_person: int = 4
    arithmetic_docs: int = 600
    countdown_docs: int = 100
    spelling_docs: int = 100
    items_per_doc: int = 12
    op_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    direct_fraction: float = 0.5
    three_digit_fraction: float = 1 / 3
    seed: int = 0

    def __post_init__(self):
        check_range("people", self.people, 1, 100_000)
        check_range("heldout_people", self.heldout_people, 1, 100_000)
        check_range("bios_per_person", self.bios_per_person, 1, 100)
        for name in ("arithmetic_docs", "countdown_docs", "spelling_docs"):
            check_range(name, getattr(self, name), 0, 10_000_000)
        check_range("items_per_doc", self.items_per_doc, 1, 1000)
        if len(self.op_weights) != 3 or sum(self.op_weights) <= 0:
            raise ConfigError(f"op_weights={self.op_weights!r}: give three weights (+, -, *) with a positive sum")
        for op, weight in zip("+-*", self.op_weights):
            check_range(f"op_weights[{op!r}]", weight, 0.0, 1e6)
        check_range("direct_fraction", self.direct_fraction, 0.0, 1.0)
        check_range("three_digit_fraction", self.three_digit_fraction, 0.0, 1.0)
        check_range("seed", self.seed, 0, 2**31 - 1)

    def pretraining_view(self) -> "WorldConfig":
        """This world as pretraining sees it, for the keys of the tokenizer, the shards and the base
        model: held-out people never appear in pretraining text, and the seen people are drawn
        first whatever their number (minilm.text.world.World), so ``heldout_people`` is set to the
        default. Raising it adds never-seen questions (chapter 08) without retraining anything;
        tests/test_data.py checks that the shards stay the same.

        >>> WorldConfig(heldout_people=60).pretraining_view() == WorldConfig()
        True
        """
        return replace(self, heldout_people=WorldConfig.heldout_people)


DEFAULT_MIXTURE = (("shakespeare", 0.5), ("biographies", 0.25), ("arithmetic", 0.15),
                   ("countdown", 0.05), ("letters", 0.05))


def check_mixture(mixture) -> None:
    """A mixture is a non-empty sequence of (source, weight) with weights >= 0, not all 0.

    >>> check_mixture((("shakespeare", 0.0),))
    Traceback (most recent call last):
    ...
    minilm.core.checks.ConfigError: mixture weights sum to 0: give at least one positive weight
    """
    if not mixture:
        raise ConfigError("mixture=() is empty: give at least one (source, weight)")
    for source, weight in mixture:
        check_range(f"mixture[{source!r}]", weight, 0.0, 1e9)
    if sum(w for _, w in mixture) <= 0:
        raise ConfigError("mixture weights sum to 0: give at least one positive weight")


@dataclass(frozen=True)
class DataConfig:
    """The pretraining mixture.

    mixture: (source, weight) pairs; weights are shares of characters in the training mixture and
        are normalised to sum to 1. A source smaller than its share is repeated (whole passes).
    total_chars: size of the training mixture in characters.
    shard_tokens: tokens per shard file.
    """

    mixture: tuple[tuple[str, float], ...] = DEFAULT_MIXTURE
    total_chars: int = 8_000_000
    shard_tokens: int = 10_000_000
    seed: int = 0

    def __post_init__(self):
        check_mixture(self.mixture)
        check_range("total_chars", self.total_chars, 1000, 10**12)
        check_range("shard_tokens", self.shard_tokens, 1000, 10**10)
        check_range("seed", self.seed, 0, 2**31 - 1)

    def weights(self) -> dict[str, float]:
        total = sum(w for _, w in self.mixture)
        return {source: w / total for source, w in self.mixture if w > 0}


@dataclass(frozen=True)
class PretrainConfig:
    """The base model and how long it trains (chapter 04).

    depth: the one knob of the model's size (layers; width = 64 x depth, heads of 64 dimensions).
    steps, batch_size, seq_len: optimizer steps and sequences x tokens per step.
    lr, warmup_steps, schedule: the learning-rate schedule (see minilm.models.train.lr_at).
    sample_every: write sample generations into the training log every this many steps (0 = never).
    compile: wrap the model in torch.compile (pays off on GPUs; compiling costs time on a CPU).
    """

    depth: int = 4
    steps: int = 3000
    batch_size: int = 32
    seq_len: int = 64
    lr: float = 3e-3
    warmup_steps: int = 100
    schedule: str = "cosine"
    eval_every: int = 250
    sample_every: int = 500
    compile: bool = False

    def __post_init__(self):
        check_range("depth", self.depth, 1, 100)
        check_range("steps", self.steps, 1, 10**9)
        check_range("batch_size", self.batch_size, 1, 10**6)
        check_range("seq_len", self.seq_len, 8, 10**6)
        check_learning_rate("lr", self.lr)
        check_range("warmup_steps", self.warmup_steps, 0, self.steps - 1)  # else the peak rate is never reached
        check_choice("schedule", self.schedule, ("cosine", "wsd", "constant"))
        check_range("eval_every", self.eval_every, 0, 10**9)
        check_range("sample_every", self.sample_every, 0, 10**9)


# The annealing mix: the plays and the biographies as in pretraining, half the pretraining arithmetic
# swapped for curated arithmetic (worked solutions, all operations), the puzzles left out.
ANNEAL_MIXTURE = (("shakespeare", 0.15), ("biographies", 0.4), ("arithmetic", 0.15), ("curated_arithmetic", 0.3))


@dataclass(frozen=True)
class MidtrainConfig:
    """Mid-training (chapter 07): two continuations of the base model, same start, schedule and tokens.

    - "anneal": the annealing ``mixture`` (below), the learning rate decaying linearly to zero;
    - "continue": the same, on the pretraining mixture (``DataConfig.mixture``): the control.

    Both give ``tool_share`` of their tokens to calculator-call documents (``tool_arithmetic``, see
    minilm.stages.midtrain), so the two differ only in the rest of their data.

    steps, batch_size: optimizer steps and sequences per step of each run (sequences of ``context``
        tokens: fewer rows than pretraining's for as many tokens per step).
    context, context_method: mid-training extends the model's context to ``context`` tokens (0 keeps
        pretraining's ``seq_len``), stretching its rotary positions by ``context_method`` (one of
        minilm.models.gpt.CONTEXT_METHODS: "interpolate", "base" or "extrapolate"). SFT and every
        later stage keep this context. Pretraining stays short, which keeps it fast (Llama 3 and
        Xiong et al. 2023 also pretrain short, then continue on long text).
    extension_steps: chapter 07's context-extension study (minilm.studies.context_extension) trains
        each method this many steps at ``context`` on the pretraining mix.
    lr, warmup_steps: the learning rate reached after ``warmup_steps`` (from a fresh optimizer), then
        decayed linearly to 0 at the last step.
    optimizer, muon_lr: "muon" trains the blocks' weight matrices with Muon (peak rate ``muon_lr``)
        and the rest with AdamW (``lr``); "adamw" trains everything with AdamW. Muon is the default
        because it taught the calculator calls far faster: at the laptop budget, 1000 anneal steps
        with Muon wrote right calls for 98-100% of held-out 4- and 5-digit problems, with AdamW
        9-37% and 0% (chapter 07).
    mixture: the annealing mix, (source, weight) pairs as in DataConfig. Sources: those of the
        pretraining mix, plus ``curated_arithmetic`` (equations and worked solutions drawn with the
        ``curated_*`` settings: all three operations equally, more 3-digit problems).
    tool_share: share of each run's mix given to calculator-call documents.
    curated_docs, tool_docs: documents generated for the curated and tool sources (each holds
        ``WorldConfig.items_per_doc`` problems).
    curated_op_weights, curated_three_digit_fraction, curated_direct_fraction: as in WorldConfig.
    tool_max_digits: tool-call problems have operands of 1 to this many digits.
    probe_n, tool_digits: problems per tool-use probe, and their operand sizes (the other probes
        ask as many questions as chapter 04's).
    grow_layers, grow_new_layers, grow_width, grow_steps: chapter 07's growing experiment: a
        ``grow_layers``-layer model of width ``grow_width`` trains ``grow_steps`` steps, gets
        ``grow_new_layers`` identity blocks and trains ``grow_steps`` more; a model of the grown
        size trains from scratch for the same compute.
    """

    steps: int = 300
    batch_size: int = 32
    context: int = 0
    context_method: str = "interpolate"
    lr: float = 3e-3
    warmup_steps: int = 20
    optimizer: str = "muon"
    muon_lr: float = 0.02
    mixture: tuple[tuple[str, float], ...] = ANNEAL_MIXTURE
    tool_share: float = 0.4
    curated_docs: int = 2000
    tool_docs: int = 2000
    curated_op_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    curated_three_digit_fraction: float = 0.5
    curated_direct_fraction: float = 0.5
    tool_max_digits: int = 5
    eval_every: int = 50
    probe_n: int = 200
    tool_digits: tuple[int, ...] = (2, 3, 4, 5)
    grow_layers: int = 2
    grow_new_layers: int = 2
    grow_width: int = 128
    grow_steps: int = 300
    extension_steps: int = 200

    def __post_init__(self):
        check_range("steps", self.steps, 1, 10**9)
        check_range("batch_size", self.batch_size, 1, 10**6)
        check_range("context", self.context, 0, 10**6)
        check_choice("context_method", self.context_method, ("interpolate", "base", "extrapolate"))
        check_range("extension_steps", self.extension_steps, 1, 10**9)
        check_learning_rate("lr", self.lr)
        check_range("warmup_steps", self.warmup_steps, 0, self.steps - 1)
        check_choice("optimizer", self.optimizer, ("adamw", "muon"))
        check_learning_rate("muon_lr", self.muon_lr)
        check_mixture(self.mixture)
        check_range("tool_share", self.tool_share, 0.0, 0.95)
        check_range("curated_docs", self.curated_docs, 1, 10_000_000)
        check_range("tool_docs", self.tool_docs, 1, 10_000_000)
        if len(self.curated_op_weights) != 3 or sum(self.curated_op_weights) <= 0:
            raise ConfigError(f"curated_op_weights={self.curated_op_weights!r}: give three weights (+, -, *) "
                              "with a positive sum")
        check_range("curated_three_digit_fraction", self.curated_three_digit_fraction, 0.0, 1.0)
        check_range("curated_direct_fraction", self.curated_direct_fraction, 0.0, 1.0)
        check_range("tool_max_digits", self.tool_max_digits, 1, 12)
        check_range("eval_every", self.eval_every, 0, 10**9)
        check_range("probe_n", self.probe_n, 1, 100_000)
        if not self.tool_digits:
            raise ConfigError("tool_digits=() is empty: give at least one operand size")
        for digits in self.tool_digits:
            check_range("tool_digits", digits, 2, 12)
        check_range("grow_layers", self.grow_layers, 1, 100)
        check_range("grow_new_layers", self.grow_new_layers, 1, 100)
        check_range("grow_width", self.grow_width, 64, 65536)
        if self.grow_width % 64:
            raise ConfigError(f"grow_width={self.grow_width} must be a multiple of 64 (heads of 64 dimensions)")
        check_range("grow_steps", self.grow_steps, 1, 10**9)

    def weights(self, mixture: dict[str, float] | None = None) -> dict[str, float]:
        """Shares of a run's mix: ``mixture`` (default: the annealing mix) scaled to ``1 - tool_share``,
        and ``tool_share`` of calculator calls.

        >>> MidtrainConfig(mixture=(("biographies", 3.0), ("shakespeare", 1.0)), tool_share=0.2).weights()
        {'biographies': 0.6, 'shakespeare': 0.2, 'tool_arithmetic': 0.2}
        """
        mixture = mixture if mixture is not None else dict(self.mixture)
        total = sum(mixture.values())
        weights = {source: round(w / total * (1 - self.tool_share), 12) for source, w in mixture.items() if w > 0}
        if self.tool_share > 0:
            weights["tool_arithmetic"] = self.tool_share
        return weights


# Where SFT conversations come from (see minilm.stages.sft): tiny-world questions and answers, refusals for
# people the model never saw, arithmetic (direct, worked, and through the calculator), letters,
# multi-turn chats mixing these, and the model's identity.
SFT_SOURCES = ("facts", "refusals", "arithmetic", "arithmetic_worked", "calculator", "letters", "multi_turn",
               "identity")
DEFAULT_SFT_MIX = (("facts", 1200), ("refusals", 600), ("arithmetic", 600), ("arithmetic_worked", 400),
                   ("calculator", 200), ("letters", 400), ("multi_turn", 300), ("identity", 150))


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning (chapter 08): the mid-trained model trained on conversations.

    steps, batch_size: optimizer steps, and rows of packed conversations per step (each row as long
        as the model's context plus one token).
    lr, warmup_steps: the learning rate reached after ``warmup_steps`` (fresh optimizer), then
        decayed linearly to 0 at the last step.
    mix: (source, conversations) pairs; sources are those of ``SFT_SOURCES``. A data-size sweep
        scales these counts to a total (``minilm.data.conversations.source_counts``).
    max_turns: multi-turn conversations have 2 to this many user turns.
    pack: several conversations per row (True) or one conversation per row, padded (False).
    too_long: what to do with a conversation longer than a row: "drop" it or "truncate" it (both
        counted). Tiny-world conversations are drawn so that they fit; this applies to real chat data.
    context: train (and keep) the model with this context length; 0 keeps the mid-trained model's
        (``MidtrainConfig.context``). Longer than the model's is stretched as mid-training stretched
        it (``MidtrainConfig.context_method``), which needs rotary positions (RoPE).
    val_conversations: conversations in the validation set (a fresh draw from the same sources).
    eval_every: validation loss every this many steps (0 = never).
    eval_n: questions per category of the evaluation suite (minilm.evals.chat_eval) before and after SFT.
    sweep_sizes: total conversations of chapter 08's data-size sweep.
    ablation_steps, ablation_eval_n: chapter 08's ablation runs (minilm.studies.sft_ablations: about a dozen
        SFT runs) train this many steps each and ask this many questions per eval category, fewer
        than the stage itself so that they fit the budget's time. Not in the repr: they do not
        change the SFT model, so its artifact key (which hashes the repr) ignores them.
    chat_dataset, chat_conversations: a real chat data set (a Hugging Face name, a save_to_disk folder
        or a JSON/JSONL file) and how many of its conversations join the mix ("" / 0: none).
    seed: draws of the data and the batches.
    """

    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 20
    mix: tuple[tuple[str, int], ...] = DEFAULT_SFT_MIX
    max_turns: int = 3
    pack: bool = True
    too_long: str = "drop"
    context: int = 0
    val_conversations: int = 200
    eval_every: int = 100
    eval_n: int = 50
    sweep_sizes: tuple[int, ...] = (10, 30, 100, 300, 1000, 3000, 10000)
    chat_dataset: str = ""
    chat_conversations: int = 0
    seed: int = 0
    ablation_steps: int = field(default=150, repr=False)
    ablation_eval_n: int = field(default=50, repr=False)

    def __post_init__(self):
        check_range("steps", self.steps, 1, 10**9)
        check_range("batch_size", self.batch_size, 1, 10**6)
        check_learning_rate("lr", self.lr)
        check_range("warmup_steps", self.warmup_steps, 0, self.steps - 1)
        if not self.mix:
            raise ConfigError("mix=() is empty: give at least one (source, conversations)")
        seen = set()
        for source, count in self.mix:
            check_choice("mix source", source, SFT_SOURCES)
            if source in seen:
                raise ConfigError(f"mix names {source!r} twice: give each source once")
            seen.add(source)
            check_range(f"mix[{source!r}]", count, 0, 10**8)
        if sum(count for _, count in self.mix) <= 0:
            raise ConfigError("mix counts sum to 0: give at least one source a positive count")
        check_range("max_turns", self.max_turns, 2, 20)
        check_choice("pack", self.pack, (True, False))
        check_choice("too_long", self.too_long, ("drop", "truncate"))
        check_range("context", self.context, 0, 10**6)
        check_range("val_conversations", self.val_conversations, 0, 10**7)
        check_range("eval_every", self.eval_every, 0, 10**9)
        check_range("eval_n", self.eval_n, 1, 100_000)
        if not self.sweep_sizes:
            raise ConfigError("sweep_sizes=() is empty: give at least one number of conversations")
        for size in self.sweep_sizes:
            check_range("sweep_sizes", size, 1, 10**8)
        if not isinstance(self.chat_dataset, str):
            raise ConfigError(f"chat_dataset={self.chat_dataset!r} must be a string (a dataset name or path, or '')")
        check_range("chat_conversations", self.chat_conversations, 0, 10**8)
        if self.chat_conversations and not self.chat_dataset:
            raise ConfigError(f"chat_conversations={self.chat_conversations} needs a chat_dataset to draw them from")
        check_range("seed", self.seed, 0, 2**31 - 1)
        check_range("ablation_steps", self.ablation_steps, 1, 10**9)
        check_range("ablation_eval_n", self.ablation_eval_n, 1, 100_000)

    def counts(self) -> dict[str, int]:
        """Conversations per source.

        >>> SFTConfig(mix=(("facts", 10), ("identity", 2))).counts()
        {'facts': 10, 'identity': 2}
        """
        return dict(self.mix)


@dataclass(frozen=True)
class Budget:
    """Everything that changes between the smoke, laptop and gpu budgets.

    corpus_chars: how many characters of the embedded training corpus a stage uses (0 = all).
    tokenizer: the tokenizer the pipeline trains.
    world: the size of the synthetic tiny world.
    data: the pretraining mixture built from the corpus and the world.
    vocab_sweep: vocabulary sizes the tokenization chapter compares (bytes per token).
    pretrain: the base model and its training run.
    midtrain: mid-training (annealing, tool use) and chapter 07's growing experiment.
    sft: supervised fine-tuning (chapter 08).
    """

    name: str
    corpus_chars: int
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    data: DataConfig = field(default_factory=DataConfig)
    vocab_sweep: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    midtrain: MidtrainConfig = field(default_factory=MidtrainConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)

    def __post_init__(self):
        check_choice("budget", self.name, BUDGET_NAMES)
        check_range("corpus_chars", self.corpus_chars, 0, 10**12)
        if not self.vocab_sweep:
            raise ConfigError("vocab_sweep=() is empty: give at least one vocabulary size")
        for size in self.vocab_sweep:
            check_range("vocab_sweep", size, 256, MAX_VOCAB_SIZE)

    def with_overrides(self, **changes) -> "Budget":
        """A copy with some fields changed (validated again).

        >>> get_budget("smoke").with_overrides(corpus_chars=1000).corpus_chars
        1000
        """
        known = {f.name for f in fields(self)}
        for key in changes:
            if key not in known:
                raise ConfigError(f"{key} is not a budget field: choose from {', '.join(sorted(known))}")
        return replace(self, **changes)


BUDGETS: dict[str, Budget] = {
    "smoke": Budget(
        name="smoke",
        corpus_chars=400_000,
        tokenizer=TokenizerConfig(vocab_size=1024),
        world=WorldConfig(people=30, heldout_people=10, bios_per_person=3, arithmetic_docs=60,
                          countdown_docs=10, spelling_docs=10),
        data=DataConfig(total_chars=600_000, shard_tokens=100_000),
        vocab_sweep=(256, 512, 1024),
        pretrain=PretrainConfig(depth=2, steps=40, batch_size=8, seq_len=64, warmup_steps=5, eval_every=20,
                                sample_every=20),
        midtrain=MidtrainConfig(steps=16, batch_size=4, context=128, warmup_steps=2, curated_docs=40, tool_docs=40,
                                eval_every=16, probe_n=8, tool_digits=(2, 4), grow_layers=1, grow_new_layers=1,
                                grow_width=64, grow_steps=16, extension_steps=8),
        sft=SFTConfig(steps=12, batch_size=8, warmup_steps=2, eval_every=6, eval_n=4, val_conversations=16,
                      mix=(("facts", 24), ("refusals", 12), ("arithmetic", 12), ("arithmetic_worked", 8),
                           ("calculator", 4), ("letters", 8), ("multi_turn", 6), ("identity", 4)),
                      sweep_sizes=(10, 30), ablation_steps=12, ablation_eval_n=4),
    ),
    "laptop": Budget(
        name="laptop",
        corpus_chars=0,
        tokenizer=TokenizerConfig(vocab_size=4096),
        # Chosen so the base model stores the people's facts and learns 2-digit addition *and*
        # subtraction (chapter 04): arithmetic is mostly direct 2-digit equations, addition and
        # subtraction equally often (8:1:1 left subtraction at 14.5% against 99.5% for addition),
        # and the biographies get a large share. The mixture holds about as many tokens as
        # pretraining reads (4000 x 32 x 64 = 8.2M), so no document is repeated by the trainer:
        # the world's sources repeat inside the mixture on purpose (facts need many exposures), and
        # the plays are read once each (chapter 02's table).
        # 100 held-out people: the eval's half of them holds 200 never-seen questions (chapter 08 asks 200
        # per category), at no pretraining cost (WorldConfig.pretraining_view).
        world=WorldConfig(people=120, heldout_people=100, bios_per_person=40, arithmetic_docs=4000,
                          op_weights=(4.0, 4.0, 1.0), direct_fraction=0.9, three_digit_fraction=0.1),
        data=DataConfig(mixture=(("shakespeare", 0.15), ("biographies", 0.4), ("arithmetic", 0.35),
                                 ("countdown", 0.05), ("letters", 0.05)), total_chars=18_500_000),
        vocab_sweep=(256, 512, 1024, 2048, 4096, 8192),
        pretrain=PretrainConfig(depth=3, steps=4000, batch_size=32, seq_len=64, lr=3e-3, warmup_steps=100,
                                eval_every=250, sample_every=500),
        # One run of 1000 steps (a quarter of pretraining's), its rows 256 tokens long (4x pretraining's
        # window; 8 rows a step, as many tokens as pretraining's 32 x 64). With Muon (the default) the
        # calculator calls were right for 98-100% of held-out 2- to 5-digit sums and differences (two
        # runs at 64 tokens). With AdamW, 300 steps (the usual annealing share, 7%) left them badly
        # copied (3% / 14% / 0% of 2- / 3- / 5-digit sums), 1000 steps gave 69% / 39% / 0% (chapter
        # 04's probes intact), and a tool share of 0.6 instead of 0.4 did worse. The context is stretched by
        # plain extrapolation: chapter 07's study (200 steps from the base model, each method) ended with
        # the lowest loss past position 64 of the held-out plays for it: Position Interpolation +0.060
        # nats (95% interval +0.045 to +0.076 over 64 windows), a larger base +0.024 (+0.011 to +0.039).
        # The run took 683 s with its probes (two runs at 64 tokens had taken 1,016 s).
        midtrain=MidtrainConfig(steps=1000, batch_size=8, context=256, context_method="extrapolate", lr=3e-3,
                                warmup_steps=20, eval_every=250,
                                probe_n=100, grow_layers=2, grow_new_layers=2, grow_width=128, grow_steps=300,
                                extension_steps=200),
        # 300 steps of 8 rows of 256 tokens (the mid-trained context; as many tokens as 32 rows of 64, about
        # 3.3 passes over the conversations), evaluated on 200 questions per category before and after.
        # Measured at 64-token rows, 32 a step: at 120 steps lr 3e-3 beat 1e-3
        # (validation loss 0.40 vs 0.45 nats on assistant tokens; facts 34% vs 28%, format 98% vs 95%);
        # 150 steps, tried as the stage, answered held-out sums far worse (direct 8% vs 28%, worked 0% vs
        # 30% of 50) and facts no better (30% vs 26%).
        # The stage took 125 s (111 s of training). Chapter 08's ablations (minilm.studies.sft_ablations):
        # 12 runs of 150 steps, about a minute each on 2 idle CPU cores: 674 s, once (cached).
        sft=SFTConfig(steps=300, batch_size=8, lr=3e-3, warmup_steps=20, eval_every=100, eval_n=200,
                      ablation_steps=150, ablation_eval_n=50),
    ),
    "gpu": Budget(
        name="gpu",
        corpus_chars=0,
        tokenizer=TokenizerConfig(vocab_size=8192),
        world=WorldConfig(people=1000, heldout_people=200, bios_per_person=40, arithmetic_docs=6000,
                          countdown_docs=1000, spelling_docs=1000),
        data=DataConfig(total_chars=40_000_000),
        vocab_sweep=(256, 512, 1024, 2048, 4096, 8192, 16384),
        pretrain=PretrainConfig(depth=12, steps=5000, batch_size=64, seq_len=512, lr=1.5e-3, warmup_steps=200,
                                eval_every=500, sample_every=1000, compile=True),
        midtrain=MidtrainConfig(steps=1000, batch_size=16, context=2048, lr=1.5e-3, warmup_steps=50, curated_docs=10_000,
                                tool_docs=10_000, eval_every=100, probe_n=300, grow_layers=4, grow_new_layers=4,
                                grow_width=512, grow_steps=2000),
        sft=SFTConfig(steps=1000, batch_size=16, lr=5e-4, warmup_steps=50, eval_every=200, eval_n=200,
                      mix=tuple((source, 5 * count) for source, count in DEFAULT_SFT_MIX), val_conversations=1000,
                      ablation_steps=1000, ablation_eval_n=200),
    ),
}


def budget_name(name: str | None = None) -> str:
    """Resolve which budget is in force: explicit name > MINILM_BUDGET > CI=true (smoke) > laptop.

    >>> budget_name("gpu")
    'gpu'
    """
    if name is None:
        name = os.environ.get("MINILM_BUDGET") or None
    if name is None and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        name = "smoke"
    name = (name or DEFAULT_BUDGET).strip().lower()
    check_choice("budget", name, BUDGET_NAMES)
    return name


def get_budget(name: str | None = None) -> Budget:
    """The Budget in force (see budget_name for how it is chosen)."""
    return BUDGETS[budget_name(name)]


def as_budget(budget: Budget | str | None) -> Budget:
    """A budget as given, or the named one (None: $MINILM_BUDGET, else the default).

    >>> as_budget("smoke").name
    'smoke'
    """
    return budget if isinstance(budget, Budget) else get_budget(budget)


def repo_root() -> Path | None:
    """The course checkout this package lives in, or None when minilm is installed elsewhere."""
    root = Path(__file__).resolve().parents[2]  # minilm/core/config.py -> the checkout
    return root if (root / "pyproject.toml").exists() and (root / "notebooks").is_dir() else None


def runs_dir() -> Path:
    """Where runs and stage artifacts go: $MINILM_RUNS, else <repo>/runs, else ~/.cache/minilm/runs."""
    if os.environ.get("MINILM_RUNS"):
        return Path(os.environ["MINILM_RUNS"]).expanduser()
    root = repo_root()
    return root / "runs" if root else Path.home() / ".cache" / "minilm" / "runs"
