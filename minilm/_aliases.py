"""The names of the old flat layout (``minilm.model``, ``minilm.sft``, ...), kept for one release.

Until issue 22 the package was flat. A student's notebook or exercise written against those names
keeps working: ``import minilm.model`` gives a thin module that forwards every name to its new home
(the same objects) and says once, with a FutureWarning, where to import it from now. The next
release deletes this file. It is the one list of old names: nothing in the package imports them.

- ``MOVED``: old module -> the module it became, with every name.
- ``SPLIT``: old module -> (the module most of it became, {name: "new.module:new_name"} for the
  names that went elsewhere, some renamed: ``minilm.artifacts.sft_artifact`` is
  ``minilm.stages.sft.artifact``).

``minilm.data`` is both an old module and the new data folder: its ``__init__`` forwards the old
module's names here.

>>> new_home("minilm.model", "GPT")
('minilm.models.gpt', 'GPT')
>>> new_home("minilm.artifacts", "sft_artifact")
('minilm.stages.sft', 'artifact')
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

MOVED = {
    "minilm.ablation": "minilm.studies.ablation",
    "minilm.attention_maps": "minilm.evals.attention_maps",
    "minilm.calculator": "minilm.core.calculator",
    "minilm.chat_template": "minilm.text.chat_template",
    "minilm.contamination": "minilm.data.contamination",
    "minilm.corpus": "minilm.text.corpus",
    "minilm.decode_step": "minilm.inference.decode_step",
    "minilm.dedup": "minilm.data.dedup",
    "minilm.device": "minilm.core.device",
    "minilm.doc_cache": "minilm.models.doc_cache",
    "minilm.files": "minilm.core.files",
    "minilm.generate": "minilm.inference.generate",
    "minilm.grow": "minilm.studies.grow",
    "minilm.model": "minilm.models.gpt",
    "minilm.muon": "minilm.models.muon",
    "minilm.ngram": "minilm.models.ngram",
    "minilm.plots_inference": "minilm.plots.inference",
    "minilm.plots_midtrain": "minilm.plots.midtrain",
    "minilm.plots_sft": "minilm.plots.sft",
    "minilm.plots_transformer": "minilm.plots.transformer",
    "minilm.probes": "minilm.evals.probes",
    "minilm.progress": "minilm.core.progress",
    "minilm.quality": "minilm.data.quality",
    "minilm.quantize": "minilm.inference.quantize",
    "minilm.shards": "minilm.data.shards",
    "minilm.timing": "minilm.inference.timing",
    "minilm.tokenizer": "minilm.text.tokenizer",
    "minilm.viz": "minilm.plots.viz",
    "minilm.world": "minilm.text.world",
}
SPLIT = {
    "minilm.artifacts": ("minilm.stages.artifact", {
        "FILE_VERSION": "minilm.text.tokenizer:FILE_VERSION",
        "MIDTRAIN_VERSION": "minilm.stages.midtrain:MIDTRAIN_VERSION",
        "MODEL_VERSION": "minilm.stages.pretrain:MODEL_VERSION",
        "SFT_ABLATIONS_VERSION": "minilm.studies.sft_ablations:SFT_ABLATIONS_VERSION",
        "SFT_VERSION": "minilm.stages.sft:SFT_VERSION",
        "Tokenizer": "minilm.text.tokenizer:Tokenizer",
        "base_model_artifact": "minilm.stages.pretrain:artifact",
        "base_model_path": "minilm.stages.pretrain:path",
        "chat_data_contents": "minilm.stages.sft:chat_data_contents",
        "check_same_vocabulary": "minilm.models.checkpoint:check_same_vocabulary",
        "load_model_with_tokenizer": "minilm.stages.tokenizer:load_model_with_tokenizer",
        "midtrain_artifact": "minilm.stages.midtrain:artifact",
        "midtrain_model_path": "minilm.stages.midtrain:path",
        "sft_ablations_artifact": "minilm.studies.sft_ablations:artifact",
        "sft_ablations_path": "minilm.studies.sft_ablations:path",
        "sft_artifact": "minilm.stages.sft:artifact",
        "sft_model_path": "minilm.stages.sft:path",
        "shakespeare_texts": "minilm.text.corpus:shakespeare_texts",
        "tokenizer_artifact": "minilm.stages.tokenizer:artifact",
        "tokenizer_path": "minilm.stages.tokenizer:path",
        "tokenizer_training_texts": "minilm.stages.tokenizer:training_texts",
    }),
    "minilm.chat": ("minilm.inference.chat", {
        "load_chat_model": "minilm.stages.sft:load_chat_model",
    }),
    "minilm.cleaning": ("minilm.data.cleaning", {
        "CARD": "minilm.data.pii:CARD",
        "EMAIL": "minilm.data.pii:EMAIL",
        "IPV4": "minilm.data.pii:IPV4",
        "IPV6": "minilm.data.pii:IPV6",
        "PHONE": "minilm.data.pii:PHONE",
        "PII_KINDS": "minilm.data.pii:PII_KINDS",
        "PLACEHOLDERS": "minilm.data.pii:PLACEHOLDERS",
        "find_pii": "minilm.data.pii:find_pii",
        "luhn_valid": "minilm.data.pii:luhn_valid",
        "pii_precision_recall": "minilm.data.pii:pii_precision_recall",
        "planted_pii": "minilm.data.pii:planted_pii",
        "redact": "minilm.data.pii:redact",
        "redact_pii": "minilm.data.pii:redact_pii",
    }),
    "minilm.config": ("minilm.core.config", {
        "check_count": "minilm.core.checks:check_count",
    }),
    "minilm.data": ("minilm.data.sources", {
        "PIPELINE_VERSION": "minilm.stages.data:PIPELINE_VERSION",
        "build_data": "minilm.stages.data:artifact",
        "data_key": "minilm.stages.data:data_key",
    }),
    "minilm.eval": ("minilm.evals.chat_eval", {
        "Person": "minilm.text.world:Person",
        "eval_checkpoint": "minilm.stages.sft:eval_checkpoint",
        "eval_path": "minilm.stages.sft:eval_path",
    }),
    "minilm.midtrain": ("minilm.stages.midtrain", {
        "atomic_write_text": "minilm.core.files:atomic_write_text",
        "get_budget": "minilm.core.config:get_budget",
        "save_summary": "minilm.core.files:write_json",
    }),
    "minilm.pretrain": ("minilm.stages.pretrain", {
        "atomic_write_text": "minilm.core.files:atomic_write_text",
        "get_budget": "minilm.core.config:get_budget",
        "save_summary": "minilm.core.files:write_json",
    }),
    "minilm.scaling": ("minilm.studies.scaling_law", {
        "ConfigError": "minilm.core.checks:ConfigError",
        "SWEEPS": "minilm.studies.scaling_sweep:SWEEPS",
        "SWEEP_VERSION": "minilm.studies.scaling_sweep:SWEEP_VERSION",
        "SweepConfig": "minilm.studies.scaling_sweep:SweepConfig",
        "SweepResult": "minilm.studies.scaling_sweep:SweepResult",
        "check_range": "minilm.core.checks:check_range",
        "model_config": "minilm.studies.scaling_sweep:model_config",
        "records_arrays": "minilm.studies.scaling_sweep:records_arrays",
        "run_budget_sweep": "minilm.studies.scaling_sweep:run_budget_sweep",
        "run_sweep": "minilm.studies.scaling_sweep:run_sweep",
        "sweep_config": "minilm.studies.scaling_sweep:sweep_config",
        "sweep_key": "minilm.studies.scaling_sweep:sweep_key",
    }),
    "minilm.sft": ("minilm.stages.sft", {
        "ARITHMETIC_QUESTIONS": "minilm.data.conversations:ARITHMETIC_QUESTIONS",
        "ATTRIBUTES": "minilm.text.world:ATTRIBUTES",
        "BIO_TEMPLATES": "minilm.text.world:BIO_TEMPLATES",
        "CALCULATOR_MIN_DIGITS": "minilm.data.conversations:CALCULATOR_MIN_DIGITS",
        "ChatFormatError": "minilm.text.chat_template:ChatFormatError",
        "FACT_ANSWERS": "minilm.data.conversations:FACT_ANSWERS",
        "FACT_QUESTIONS": "minilm.data.conversations:FACT_QUESTIONS",
        "IDENTITY": "minilm.data.conversations:IDENTITY",
        "IDENTITY_PROBES": "minilm.evals.probes:IDENTITY_PROBES",
        "QUESTIONS": "minilm.text.world:QUESTIONS",
        "REFUSAL": "minilm.text.world:REFUSAL",
        "REFUSALS": "minilm.data.conversations:REFUSALS",
        "REFUSAL_COLUMNS": "minilm.evals.probes:REFUSAL_COLUMNS",
        "ROLE_NAMES": "minilm.data.chat_sets:ROLE_NAMES",
        "SFT_SOURCES": "minilm.core.config:SFT_SOURCES",
        "SOURCES": "minilm.data.conversations:SOURCES",
        "WORKED_SUFFIX": "minilm.text.world:WORKED_SUFFIX",
        "conversation_length": "minilm.data.conversations:conversation_length",
        "get_budget": "minilm.core.config:get_budget",
        "is_known": "minilm.data.conversations:is_known",
        "knowledge_aware_conversations": "minilm.data.conversations:knowledge_aware_conversations",
        "knowledge_key": "minilm.data.conversations:knowledge_key",
        "knowledge_summary": "minilm.evals.probes:knowledge_summary",
        "normalize_conversation": "minilm.data.chat_sets:normalize_conversation",
        "people_split": "minilm.text.world:people_split",
        "probe_knowledge": "minilm.evals.probes:probe_knowledge",
        "refusal_rows": "minilm.evals.probes:refusal_rows",
        "save_summary": "minilm.core.files:write_json",
        "source_counts": "minilm.data.conversations:source_counts",
        "source_stream": "minilm.data.conversations:source_stream",
        "tool_call_text": "minilm.text.world:tool_call_text",
    }),
    "minilm.sft_ablations": ("minilm.studies.sft_ablations", {
        "get_budget": "minilm.core.config:get_budget",
    }),
    "minilm.train": ("minilm.models.train", {
        "CheckpointError": "minilm.models.checkpoint:CheckpointError",
        "atomic_write_bytes": "minilm.core.files:atomic_write_bytes",
    }),
}

_WARNED: set[str] = set()


def new_home(old_module: str, name: str) -> tuple[str, str]:
    """``(module, name)``: where ``old_module.name`` lives now."""
    if old_module in MOVED:
        return MOVED[old_module], name
    main, names = SPLIT[old_module]
    module, _, new_name = names.get(name, f"{main}:{name}").partition(":")
    return module, new_name


def _warn_once(old: str, new: str) -> None:
    if old not in _WARNED:
        _WARNED.add(old)
        warnings.warn(f"{old} is now {new}: import it from there (the old name goes in the next release)",
                      FutureWarning, stacklevel=4)


def old_attribute(old_module: str, name: str):
    """``old_module.name`` as it was: the object at its new home (warns once per old module, or per
    name of a split module, which has no one new home)."""
    if name.startswith("__"):
        raise AttributeError(name)
    module, new_name = new_home(old_module, name)
    try:
        value = getattr(importlib.import_module(module), new_name)
    except AttributeError:
        raise AttributeError(f"module {old_module!r} has no attribute {name!r}") from None
    if old_module in MOVED:
        _warn_once(old_module, module)
    else:
        _warn_once(f"{old_module}.{name}", f"{module}.{new_name}")
    return value


class _OldModule(types.ModuleType):
    """A thin module under an old name: every attribute is looked up at its new home."""

    def __getattr__(self, name):
        return old_attribute(self.__name__, name)

    def __dir__(self):
        if self.__name__ in MOVED:
            return dir(importlib.import_module(MOVED[self.__name__]))
        main, names = SPLIT[self.__name__]
        return sorted(set(dir(importlib.import_module(main))) | set(names))


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old module names no file provides any more (last on ``sys.meta_path``)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED or fullname in SPLIT:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return _OldModule(spec.name)

    def exec_module(self, module):
        if module.__name__ in MOVED:  # one warning at import, naming the new module
            _warn_once(module.__name__, MOVED[module.__name__])


def install() -> None:
    if not any(isinstance(finder, _OldNames) for finder in sys.meta_path):
        sys.meta_path.append(_OldNames())
