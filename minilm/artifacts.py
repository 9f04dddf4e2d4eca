"""Build-or-load for each stage's product, so any notebook or command runs on its own.

A stage's artifact lives under ``runs/artifacts/<budget>/`` and its file name carries a key of
everything it depends on (config and data version), so changing the budget or a config builds a
new artifact instead of silently reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .config import Budget, get_budget, runs_dir
from .corpus import shakespeare_texts
from .files import read_json
from .tokenizer import FILE_VERSION, Tokenizer

# Bump when the corpus cleaning changes, so artifacts built from the old text are not reused.
CORPUS_VERSION = 1


def artifact_dir(budget: Budget) -> Path:
    return runs_dir() / "artifacts" / budget.name


def _key(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]


def tokenizer_path(budget: Budget) -> Path:
    cfg = budget.tokenizer
    key = _key(vocab=cfg.vocab_size, digits=cfg.digit_group, chars=budget.corpus_chars,
               corpus=CORPUS_VERSION, file=FILE_VERSION, world=repr(budget.world))
    return artifact_dir(budget) / f"tokenizer-{cfg.vocab_size}-{key}.json"


def tokenizer_training_texts(budget: Budget) -> list[str]:
    """What the pipeline's tokenizer learns from: the training plays and one copy of the tiny world.

    Training on the world too gives its names and words tokens of their own (digits stay split),
    so facts are a few tokens each and easier to store.
    """
    from .world import World

    world_docs = [doc for docs in World(budget.world).documents().values() for doc in docs]
    return shakespeare_texts("train", budget.corpus_chars) + world_docs


def tokenizer_artifact(budget: Budget | str | None = None, progress: bool = True) -> Tokenizer:
    """The budget's tokenizer: loaded if built before, else trained (Shakespeare + tiny world) and saved."""
    budget = budget if isinstance(budget, Budget) else get_budget(budget)
    path = tokenizer_path(budget)
    if path.exists():
        return Tokenizer.load(path)
    tokenizer = Tokenizer.from_config(tokenizer_training_texts(budget), budget.tokenizer, progress=progress)
    tokenizer.save(path)
    return tokenizer


# Bump when the model or the training loop changes what a checkpoint holds or how it is trained.
MODEL_VERSION = 1


def base_model_path(budget: Budget) -> Path:
    from .data import data_key

    key = _key(data=data_key(budget), pretrain=repr(budget.pretrain), model=MODEL_VERSION)
    return artifact_dir(budget) / f"base-{key}.pt"


def base_model_artifact(budget: Budget | str | None = None, progress: bool = True, device: str | None = None):
    """The budget's pretrained base model: ``(model, tokenizer, summary)``, trained if missing.

    Training writes ``base-<key>.partial.pt`` as it goes (an interrupted build resumes from it) and
    renames it to ``base-<key>.pt`` with a ``.json`` summary (history, samples, probes) when done.
    """
    from .pretrain import pretrain, save_summary

    budget = budget if isinstance(budget, Budget) else get_budget(budget)
    return _trained_model_artifact(base_model_path(budget), budget, progress, save_summary,
                                   lambda partial: pretrain(budget, checkpoint=partial, device=device, progress=progress))


def _trained_model_artifact(path: Path, budget: Budget, progress: bool, save_summary, build):
    """``(model, tokenizer, summary)`` of the checkpoint at ``path`` and its ``.json`` summary; when
    missing, ``build(partial_checkpoint)`` trains it (returning the model and its summary), writing
    ``<path>.partial.pt`` as it goes, and both files are renamed into place once complete."""
    summary_path = path.with_suffix(".json")
    partial = path.with_suffix(".partial.pt")
    _recover_finished(path, partial)
    if not (path.exists() and summary_path.exists()):
        model, summary = build(partial)
        model.cpu()  # as loaded from the file below: callers move it where they want it
        if summary is None:  # a process other than 0 under torchrun: process 0 writes the files
            return model, None, None
        save_summary(summary_path.with_suffix(".partial.json"), summary)
        partial.replace(path)
        summary_path.with_suffix(".partial.json").replace(summary_path)
    else:
        model = load_model(path)
    # Read back even when just written, so a fresh and a reused artifact give the same summary.
    return model, tokenizer_artifact(budget, progress=progress), read_json(summary_path)


def _recover_finished(path: Path, partial: Path) -> None:
    """A finished model whose summary is missing is made whole again instead of retrained from scratch.

    A build renames the model and then its summary into place; a crash between the two leaves the model
    beside a ``.partial.json`` summary, whose rename is finished here. A model with no summary at all
    (deleted by hand) becomes the partial checkpoint again: the build resumes at its last step, trains
    nothing and writes the summary anew.
    """
    summary_path = path.with_suffix(".json")
    if not path.exists() or summary_path.exists():
        return
    pending = summary_path.with_suffix(".partial.json")
    if pending.exists():
        pending.replace(summary_path)
    else:
        path.replace(partial)


def load_model(path: Path):
    """The model saved in a checkpoint file, in eval mode on the CPU."""
    from dataclasses import fields

    from .model import GPT, GPTConfig
    from .train import CheckpointError, load_checkpoint

    state = load_checkpoint(path)
    if not isinstance(state.get("model_config"), dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{path}: a minilm checkpoint without a model (no model_config or weights)")
    unknown = sorted(set(state["model_config"]) - {f.name for f in fields(GPTConfig)})
    if unknown:
        raise CheckpointError(f"{path}: its model has settings this minilm does not know ({', '.join(unknown)}): "
                              "written by a newer version?")
    model = GPT(GPTConfig(**state["model_config"]))
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if missing or unexpected:  # torch's own message is many lines long
        raise CheckpointError(f"{path}: its weights do not fit its model settings (missing: "
                              f"{', '.join(missing) or 'none'}; unexpected: {', '.join(unexpected) or 'none'})")
    return model.eval()


def check_same_vocabulary(model, tokenizer) -> None:
    """Raise a ValueError unless ``model`` and ``tokenizer`` have the same vocabulary size (a model
    paired with another tokenizer reads its token ids as other tokens)."""
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"the model has vocab_size={model.config.vocab_size} but the tokenizer has "
                         f"{tokenizer.vocab_size}: they were not trained together")


def load_model_with_tokenizer(path: Path, budget: Budget, progress: bool = False):
    """``(model, tokenizer)``: any checkpoint (:func:`load_model`: a missing or unreadable file is a
    one-line CheckpointError, raised before a tokenizer is built) with the budget's tokenizer; a
    ValueError when their vocabularies differ."""
    model = load_model(path)
    tokenizer = tokenizer_artifact(budget, progress=progress)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"{path}: the model has vocab_size={model.config.vocab_size} but the {budget.name} "
                         f"budget's tokenizer has {tokenizer.vocab_size}: pass the budget it was trained at (--budget)")
    return model, tokenizer


# Bump when mid-training changes what its model holds or how it is trained.
MIDTRAIN_VERSION = 1


def midtrain_model_path(budget: Budget) -> Path:
    """Keyed by the base model it starts from and the mid-training settings (not the growing
    experiment's, which only notebook 07 runs)."""
    from dataclasses import asdict

    settings = {k: v for k, v in asdict(budget.midtrain).items() if not k.startswith("grow_")}
    key = _key(base=base_model_path(budget).name, midtrain=repr(sorted(settings.items())), version=MIDTRAIN_VERSION)
    return artifact_dir(budget) / f"midtrain-{key}.pt"


def midtrain_artifact(budget: Budget | str | None = None, progress: bool = True, device: str | None = None):
    """The budget's mid-trained model (annealed, calculator calls learned): ``(model, tokenizer, summary)``.

    Built from the base model (itself built if missing) the first time. The two runs write
    ``midtrain-<key>.<run>.partial.pt`` as they go (an interrupted build resumes from them); when
    both are done the annealed model becomes ``midtrain-<key>.pt`` with a ``.json`` summary, and
    the control run's checkpoint is removed.
    """
    from .midtrain import RUNS, midtrain, save_summary

    budget = budget if isinstance(budget, Budget) else get_budget(budget)
    path = midtrain_model_path(budget)
    summary_path = path.with_suffix(".json")
    prefix = path.with_suffix("")
    _recover_finished(path, Path(f"{prefix}.anneal.partial.pt"))
    if not (path.exists() and summary_path.exists()):
        model, summary = midtrain(budget, checkpoint_prefix=prefix, device=device, progress=progress)
        save_summary(summary_path.with_suffix(".partial.json"), summary)
        Path(f"{prefix}.anneal.partial.pt").replace(path)
        summary_path.with_suffix(".partial.json").replace(summary_path)
        for run in RUNS:
            Path(f"{prefix}.{run}.partial.pt").unlink(missing_ok=True)
    else:
        model = load_model(path)
    return model, tokenizer_artifact(budget, progress=progress), read_json(summary_path)


# Bump when SFT changes what its model holds or how it is trained.
SFT_VERSION = 1


def chat_data_contents(chat_dataset: str) -> dict:
    """A key part for a local chat data file or folder: a hash of its contents, so that editing the
    file builds a new model instead of reusing the one trained on its old text. Empty for no chat
    data (the budgets' own keys stay as they were) and for hub names.

    >>> chat_data_contents("")
    {}
    """
    path = Path(chat_dataset).expanduser() if chat_dataset else None
    if path is None or not path.exists():
        return {}
    digest = hashlib.sha256()
    for file in sorted([path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]):
        digest.update(str(file.relative_to(path) if file != path else file.name).encode() + b"\0")
        with open(file, "rb") as handle:  # in chunks: a large data file need not fit in memory
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return {"chat_data": digest.hexdigest()[:16]}


def sft_model_path(budget: Budget) -> Path:
    """Keyed by the mid-trained model it starts from, the SFT settings and a local chat data set's contents."""
    key = _key(midtrain=midtrain_model_path(budget).name, sft=repr(budget.sft), version=SFT_VERSION,
               **chat_data_contents(budget.sft.chat_dataset))
    return artifact_dir(budget) / f"sft-{key}.pt"


def sft_artifact(budget: Budget | str | None = None, progress: bool = True, device: str | None = None):
    """The budget's chat model (supervised fine-tuning of the mid-trained model): ``(model, tokenizer, summary)``.

    Built from the mid-trained model (itself built if missing) the first time. Training writes
    ``sft-<key>.partial.pt`` as it goes (an interrupted build resumes from it) and renames it to
    ``sft-<key>.pt`` with a ``.json`` summary (data, history, evaluation before and after) when done.
    """
    from .sft import save_summary, sft

    budget = budget if isinstance(budget, Budget) else get_budget(budget)
    return _trained_model_artifact(sft_model_path(budget), budget, progress, save_summary,
                                   lambda partial: sft(budget, checkpoint=partial, device=device, progress=progress))


# Bump when chapter 08's ablations (minilm.sft_ablations) change what they run or record.
SFT_ABLATIONS_VERSION = 1


def sft_ablations_path(budget: Budget) -> Path:
    """Keyed by the mid-trained model the runs start from, every SFT setting (the ablation ones
    included) and the world."""
    from dataclasses import asdict

    key = _key(midtrain=midtrain_model_path(budget).name, sft=repr(sorted(asdict(budget.sft).items())),
               world=repr(budget.world), sft_version=SFT_VERSION, version=SFT_ABLATIONS_VERSION,
               **chat_data_contents(budget.sft.chat_dataset))
    return artifact_dir(budget) / f"sft-ablations-{key}.json"


def sft_ablations_artifact(budget: Budget | str | None = None, progress: bool = True,
                           device: str | None = None) -> dict:
    """Chapter 08's four SFT studies (:func:`minilm.sft_ablations.sft_ablations`): their results, run the
    first time (about a dozen short SFT runs, from the mid-trained model, itself built if missing)
    and saved as ``sft-ablations-<key>.json`` (written atomically when all are done); loaded after."""
    from .files import atomic_write_text
    from .sft_ablations import sft_ablations

    budget = budget if isinstance(budget, Budget) else get_budget(budget)
    path = sft_ablations_path(budget)
    if not path.exists():
        results = sft_ablations(budget, progress=progress, device=device)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(results, indent=1))
    return read_json(path)
