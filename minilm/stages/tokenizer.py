"""The first stage: the budget's tokenizer, trained on the training plays and the tiny world, and kept.

Every later stage reads its token ids with this tokenizer, so it is also where a checkpoint is
paired with the vocabulary it was trained with (:func:`load_model_with_tokenizer`).
"""

from __future__ import annotations

from pathlib import Path

from ..core.config import Budget, as_budget
from ..core.files import remove_orphan_temporaries
from ..models.checkpoint import load_model
from ..text.corpus import shakespeare_texts
from ..text.tokenizer import FILE_VERSION, Tokenizer
from ..text.world import World
from .artifact import CORPUS_VERSION, artifact_dir, content_key


def path(budget: Budget) -> Path:
    cfg = budget.tokenizer
    k = content_key(vocab=cfg.vocab_size, digits=cfg.digit_group, chars=budget.corpus_chars,
                    corpus=CORPUS_VERSION, file=FILE_VERSION, world=repr(budget.world.pretraining_view()))
    return artifact_dir(budget) / f"tokenizer-{cfg.vocab_size}-{k}.json"


def training_texts(budget: Budget) -> list[str]:
    """What the pipeline's tokenizer learns from: the training plays and one copy of the tiny world.

    Training on the world too gives its names and words tokens of their own (digits stay split),
    so facts are a few tokens each and easier to store.
    """
    world_docs = [doc for docs in World(budget.world).documents().values() for doc in docs]
    return shakespeare_texts("train", budget.corpus_chars) + world_docs


def artifact(budget: Budget | str | None = None, progress: bool = True) -> Tokenizer:
    """The budget's tokenizer: loaded if built before, else trained (Shakespeare + tiny world) and saved."""
    budget = as_budget(budget)
    file = path(budget)
    remove_orphan_temporaries(file.parent)
    if file.exists():
        return Tokenizer.load(file)
    tokenizer = Tokenizer.from_config(training_texts(budget), budget.tokenizer, progress=progress)
    tokenizer.save(file)
    return tokenizer


def load_model_with_tokenizer(checkpoint: Path, budget: Budget, progress: bool = False):
    """``(model, tokenizer)``: any checkpoint (:func:`minilm.models.checkpoint.load_model`: a missing or
    unreadable file is a one-line CheckpointError, raised before a tokenizer is built) with the
    budget's tokenizer; a ValueError when their vocabularies differ."""
    model = load_model(checkpoint)
    tokenizer = artifact(budget, progress=progress)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"{checkpoint}: the model has vocab_size={model.config.vocab_size} but the {budget.name} "
                         f"budget's tokenizer has {tokenizer.vocab_size}: pass the budget it was trained at (--budget)")
    return model, tokenizer


# ----------------------------------------------------------------------------------------------
# The command: `minilm tokenizer` (one generic handler in minilm.cli reads these)

COMMAND, CHAPTER, PRODUCT = "tokenizer", "01", "tokenizer"
HELP = "train (or load) the budget's byte-level BPE tokenizer"


def report(tokenizer: Tokenizer) -> str:
    """What ``minilm tokenizer`` prints about the budget's tokenizer."""
    return str(tokenizer)
