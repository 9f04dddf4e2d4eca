"""Chapter 08's measured experiments: what SFT does, and what it does not.

Four studies, each a few short SFT runs that differ in one thing only, every run measured with
the evaluation suite (:func:`minilm.evals.chat_eval.run_eval`) and the identity probe
(:func:`minilm.stages.sft.identity_rate`):

- :func:`bootstrap_study` ("pretraining as bootstrapping"): the same SFT (same conversations in the
  same order, steps, schedule and seed) from the mid-trained model and from a random
  initialisation of the same shape. SFT teaches the format; the knowledge has to be there already.
- :func:`data_size_sweep` (LIMA, Zhou et al. 2023): SFT on nested data sets of 10 to 10,000
  conversations, the *same number of steps* for each, so a small set is seen many times over
  (each record says how many: ``passes``). Format compliance saturates with few conversations;
  facts accuracy is bounded by what pretraining stored, however much SFT data there is.
- :func:`refusal_study`: (a) SFT with no refusal data at all, (b) the default mix (refusals about
  people the model never saw), (c) Llama 3-style knowledge-aware data: the mid-trained model is
  probed on the ``sft_known`` people (:func:`minilm.evals.probes.probe_knowledge`) and the fact
  conversations answer what it knows and refuse what it does not
  (:func:`minilm.data.conversations.knowledge_aware_conversations`). Measured: hallucinations on never-seen
  people, false refusals on seen people, and facts accuracy.
- :func:`identity_study`: SFT with and without the identity conversations; how often the model
  names itself when asked who it is in new words, and what it says without them.

All runs use the budget's SFT settings with ``SFTConfig.ablation_steps`` steps and
``SFTConfig.ablation_eval_n`` questions per category (:func:`ablation_config`): fewer steps than
the stage itself (laptop: 150 instead of 300) so that the dozen runs fit (laptop: about a minute
each on 2 CPU cores, 11 minutes in all, once: the results are cached). Same seed everywhere, so
runs on the same data draw the same batches. The default-mix run is shared by the three studies that
need it and, where the ablation steps equal the stage's,
it *is* the main SFT model (:func:`minilm.stages.sft.artifact`), not trained again; each run's
record says where it comes from (``source``) and how it was trained.

Removing a source (refusals, identity) removes it everywhere: multi-turn conversations holding a
refusal (or a self-introduction) go too, and the record counts them (``removed``). The other
conversations stay the same, so those runs see fewer conversations in the same number of steps.

:func:`sft_ablations` runs the four studies; :func:`artifact` caches
its results (JSON) so that notebook 08 re-executes in seconds once they are built.

>>> from minilm.core.config import get_budget
>>> cfg = ablation_config(get_budget("laptop"))
>>> cfg.steps, cfg.eval_n, cfg.batch_size
(150, 50, 8)
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..core.config import Budget, SFTConfig, as_budget
from ..core.device import best_device
from ..core.files import read_json, write_json
from ..data.conversations import conversation_length, conversations, knowledge_aware_conversations, mix_conversations
from ..evals import probes
from ..evals.chat_eval import CATEGORIES, is_refusal, run_eval
from ..evals.probes import identity_rate
from ..models.checkpoint import check_same_vocabulary
from ..stages import midtrain, sft
from ..stages.artifact import artifact_dir, content_key
from ..stages.sft import sft_data, train_sft
from ..text.world import World, people_split

DEFAULT_RUN = "default mix"
# The knowledge probe: samples per question and their temperature (see minilm.evals.probes.probe_knowledge).
PROBE_SAMPLES = 4
PROBE_TEMPERATURE = 0.7


def ablation_config(budget: Budget) -> SFTConfig:
    """The budget's SFT settings for an ablation run: ``ablation_steps`` steps (warmup kept shorter
    than the run), ``ablation_eval_n`` questions per category, the validation loss halfway and at
    the end (twice: each costs a pass over the validation conversations)."""
    sft = budget.sft
    steps = sft.ablation_steps
    return replace(sft, steps=steps, eval_n=sft.ablation_eval_n, warmup_steps=min(sft.warmup_steps, steps - 1),
                   eval_every=max(1, steps // 2))


@dataclass
class AblationSetup:
    """What every run of the studies shares: the starting model, the data, the settings.

    ``start``: the mid-trained model (CPU), every run starts from a copy of it (or from a random
    initialisation of its shape); ``data``: :func:`minilm.stages.sft.sft_data` (training conversations by
    source, validation conversations); ``main_sft``: whether the default-mix run may be the main
    SFT model (when the ablation steps equal the stage's); ``runs``: the records of the runs done
    so far, by name, so that a run two studies need is trained once.
    """

    budget: Budget
    config: SFTConfig
    start: object
    tokenizer: object
    world: object
    data: dict
    device: str = "cpu"
    progress: bool = True
    main_sft: bool = True
    runs: dict = field(default_factory=dict)
    trained: int = 0  # runs trained here (not loaded)

    @property
    def width(self) -> int:
        """Tokens in a training row: the model's context plus one."""
        return self.start.config.block_size + 1


def make_setup(budget: Budget | str | None = None, device: str | None = None, progress: bool = True,
               model=None, tokenizer=None) -> AblationSetup:
    """The shared setup: the budget's mid-trained model (:func:`minilm.stages.midtrain.artifact`,
    built if missing) or the ``model`` and ``tokenizer`` given (tests use tiny ones; then the main
    SFT model is never used), its context extended as the stage does, and the stage's data."""
    budget = as_budget(budget)
    if (model is None) != (tokenizer is None):
        raise ValueError("give both model and tokenizer (a start for the runs), or neither (the budget's "
                         "mid-trained model)")
    main_sft = model is None
    if model is None:
        model, tokenizer, _ = midtrain.artifact(budget, progress=progress, device=device)
    check_same_vocabulary(model, tokenizer)
    model = sft.at_sft_context(midtrain.plain_gpt(model.cpu()), budget)
    data = sft_data(budget, tokenizer, model.config.block_size)
    return AblationSetup(budget, ablation_config(budget), model, tokenizer, World(budget.world), data,
                         device or best_device(), progress, main_sft)


# ----------------------------------------------------------------------------------------------
# One run


def _random_model(config, seed: int):
    """A freshly initialised model of the given shape (seeded: the same weights every time)."""
    import torch

    from ..models.gpt import GPT

    torch.manual_seed(seed)
    return GPT(config)


def _last(history: list[dict], key: str):
    values = [record[key] for record in history if key in record]
    return round(values[-1], 4) if values else None


def _record(name: str, init: str, source: str, by_source: dict, config: SFTConfig, rows: int, history: list,
            evaluation: dict, identity: dict, train_seconds: float, seconds: float) -> dict:
    counts = {s: len(c) for s, c in by_source.items()}
    return {"name": name, "init": init, "source": source, "steps": config.steps, "batch_size": config.batch_size,
            "lr": config.lr, "seed": config.seed, "counts": counts, "conversations": sum(counts.values()),
            "rows": rows, "passes": round(config.steps * config.batch_size / max(1, rows), 2),
            "train_loss": _last(history, "loss"), "val_loss": _last(history, "val_loss"),
            "history": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()
                         if k in ("step", "loss", "val_loss", "val_bpb")} for r in history],
            "eval": evaluation, "identity": identity, "train_seconds": round(train_seconds, 1),
            "seconds": round(seconds, 1)}


def train_run(setup: AblationSetup, name: str, by_source: dict, init: str = "mid-trained") -> dict:
    """SFT from ``init`` ("mid-trained": a copy of the setup's model; "random": a seeded fresh
    initialisation of its shape) on ``by_source`` (conversations by source, mixed with the
    config's seed), then the eval suite and the identity probe. The record (see the module) is
    kept in ``setup.runs[name]``: asked again, the run is not trained again."""
    if name in setup.runs:
        return setup.runs[name]
    if init not in ("mid-trained", "random"):
        raise ValueError(f"init={init!r} is not allowed: choose 'mid-trained' or 'random'")
    cfg = setup.config
    started = time.perf_counter()
    model = midtrain.plain_gpt(setup.start) if init == "mid-trained" else _random_model(setup.start.config, cfg.seed)
    result, batches = train_sft(model, setup.tokenizer, mix_conversations(by_source, cfg.seed), cfg,
                                val_convs=setup.data["val"], device=setup.device, progress=setup.progress,
                                compile=setup.budget.pretrain.compile)
    model.eval()
    evaluation = run_eval(model, setup.tokenizer, setup.world, n=cfg.eval_n)
    identity = identity_rate(model, setup.tokenizer)
    record = _record(name, init, f"trained here ({cfg.steps} steps)", by_source, cfg, int(batches.tokens.shape[0]),
                     result.history, evaluation, identity, result.seconds, time.perf_counter() - started)
    setup.runs[name] = record
    setup.trained += 1
    if setup.progress:
        print(f"sft ablation {name!r}: {record['conversations']} conversations, {cfg.steps} steps "
              f"({record['passes']} passes), {record['seconds']:.0f} s")
    return record


def default_run(setup: AblationSetup) -> dict:
    """The default mix from the mid-trained model: the main SFT model (:func:`minilm.stages.sft.artifact`)
    when the ablation steps equal the stage's, else trained here with the ablation steps."""
    if DEFAULT_RUN in setup.runs:
        return setup.runs[DEFAULT_RUN]
    cfg, main = setup.config, setup.budget.sft
    if not (setup.main_sft and cfg.steps == main.steps):
        return train_run(setup, DEFAULT_RUN, setup.data["train"])
    started = time.perf_counter()
    model, tokenizer, summary = sft.artifact(setup.budget, progress=setup.progress, device=setup.device)
    model.to(setup.device).eval()
    same_eval = summary["config"]["eval_n"] == cfg.eval_n
    evaluation = summary["eval"]["after"] if same_eval else run_eval(model, tokenizer, setup.world, n=cfg.eval_n)
    record = _record(DEFAULT_RUN, "mid-trained", f"the main SFT stage (sft_artifact, {main.steps} steps)",
                     setup.data["train"], main, summary["data"]["rows"], summary["history"], evaluation,
                     summary["identity"]["after"], summary["train_seconds"], time.perf_counter() - started)
    setup.runs[DEFAULT_RUN] = record
    return record


def without(by_source: dict, source: str, contains) -> tuple[dict, int]:
    """``by_source`` without ``source``, and without any other conversation for which
    ``contains(conversation)`` is true (a multi-turn chat with a refusal in it, say); returns the
    data and how many conversations were removed.

    >>> data = {"facts": [["f"]], "refusals": [["r"]], "multi_turn": [["f", "r"], ["f"]]}
    >>> without(data, "refusals", lambda c: "r" in c)
    ({'facts': [['f']], 'multi_turn': [['f']]}, 2)
    """
    kept = {s: [c for c in convs if not contains(c)] for s, convs in by_source.items() if s != source}
    removed = sum(len(c) for c in by_source.values()) - sum(len(c) for c in kept.values())
    return kept, removed


def _assistant_texts(conversation) -> list[str]:
    return [m["content"] for m in conversation if m["role"] == "assistant"]


def refuses(conversation) -> bool:
    """Does an assistant turn of the conversation refuse (:func:`minilm.evals.chat_eval.is_refusal`)?"""
    return any(is_refusal(text) for text in _assistant_texts(conversation))


def introduces_itself(conversation) -> bool:
    """Does an assistant turn of the conversation name the model (``minilm``)?"""
    return any("minilm" in text.lower() for text in _assistant_texts(conversation))


# ----------------------------------------------------------------------------------------------
# The studies


def _setup(budget, setup, progress: bool, device) -> AblationSetup:
    return setup if setup is not None else make_setup(budget, device=device, progress=progress)


def bootstrap_study(budget: Budget | str | None = None, setup: AblationSetup | None = None, progress: bool = True,
                    device: str | None = None) -> dict:
    """The default mix from the mid-trained model and from a random initialisation of the same
    shape: same conversations in the same order, same steps, schedule and seed.

    Returns ``{"runs": {"mid-trained + SFT": record, "random init + SFT": record}}``.
    """
    setup = _setup(budget, setup, progress, device)
    pretrained = default_run(setup)
    scratch = train_run(setup, "random init", setup.data["train"], init="random")
    return {"runs": {"mid-trained + SFT": pretrained, "random init + SFT": scratch}}


def _check_sizes(sizes) -> list[int]:
    if not sizes:
        raise ValueError("sizes is empty: give at least one number of conversations")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"sizes holds {size!r}: every size must be a whole number >= 1 (conversations)")
    return sorted(set(sizes))


def is_nested(smaller: dict, larger: dict) -> bool:
    """Is every source of ``smaller`` the start of the same source in ``larger``?

    >>> is_nested({"a": [1, 2]}, {"a": [1, 2, 3], "b": [4]}), is_nested({"a": [2]}, {"a": [1, 2]})
    (True, False)
    """
    return all(larger.get(source, [])[: len(convs)] == convs for source, convs in smaller.items())


def data_size_sweep(budget: Budget | str | None = None, sizes=None, setup: AblationSetup | None = None,
                    progress: bool = True, device: str | None = None) -> dict:
    """SFT from the mid-trained model on ``sizes`` conversations (default: ``budget.sft.sweep_sizes``),
    shared among the sources in the mix's proportions (:func:`minilm.data.conversations.source_counts`): nested
    data sets, each a prefix of the next. Every run trains the same number of steps, so a small
    set is seen many times (``passes``). A size equal to the default mix's is the default run.

    Returns ``{"sizes": [...], "runs": [record, ...], "nested": True}`` (records add ``size``).
    """
    setup = _setup(budget, setup, progress, device)
    sizes = _check_sizes(sizes if sizes is not None else setup.budget.sft.sweep_sizes)
    runs, previous, nested = [], None, True
    for size in sizes:
        by_source = conversations(setup.world, setup.config, seed=setup.config.seed, total=size,
                                  tokenizer=setup.tokenizer, max_tokens=setup.width)
        nested = nested and (previous is None or is_nested(previous, by_source))
        previous = by_source
        record = default_run(setup) if by_source == setup.data["train"] else train_run(setup, f"{size} conversations",
                                                                                        by_source)
        runs.append({**record, "size": size})
    return {"sizes": sizes, "runs": runs, "nested": nested}


def _fill(convs: list, n: int, seed: int) -> list:
    """``n`` conversations: passes over ``convs``, each in a fresh seeded order."""
    if not convs:
        raise ValueError("the knowledge-aware data is empty: no conversation to train on")
    out, rng = [], random.Random(f"sft-ablations-aware-{seed}")
    while len(out) < n:
        order = list(convs)
        rng.shuffle(order)
        out += order[: n - len(out)]
    return out


def knowledge_aware_data(setup: AblationSetup) -> tuple[dict, dict]:
    """The default mix with its ``facts`` replaced by Llama 3-style knowledge-aware conversations
    about the same ``sft_known`` people: the mid-trained model is probed
    (:func:`minilm.evals.probes.probe_knowledge`), and :func:`minilm.data.conversations.knowledge_aware_conversations`
    answers the facts it knows and refuses the rest. As many of them as the default mix has facts
    (repeated passes in seeded orders), in the same place in the mix; the rest of the data is
    unchanged. Returns the data and a summary of the probe."""
    cfg, people = setup.config, people_split(setup.world)["sft_known"]
    knowledge = probes.probe_knowledge(setup.start.to(setup.device), setup.tokenizer, setup.world, people,
                                    samples=PROBE_SAMPLES, temperature=PROBE_TEMPERATURE, seed=cfg.seed)
    setup.start.cpu()
    aware = knowledge_aware_conversations(setup.world, knowledge, people, rng_seed=cfg.seed)
    fitting = [c for c in aware if conversation_length(setup.tokenizer, c) <= setup.width]
    train = setup.data["train"]
    data = {(source if source != "facts" else "facts (knowledge-aware)"):
            (convs if source != "facts" else _fill(fitting, len(convs), cfg.seed)) for source, convs in train.items()}
    summary = {**probes.knowledge_summary(knowledge), "samples": PROBE_SAMPLES, "temperature": PROBE_TEMPERATURE,
               "conversations": len(aware), "too_long": len(aware) - len(fitting),
               "refusals": sum(refuses(c) for c in fitting), "probe": knowledge}
    return data, summary


def refusal_study(budget: Budget | str | None = None, setup: AblationSetup | None = None, progress: bool = True,
                  device: str | None = None) -> dict:
    """Hallucinations and false refusals: (a) no refusal data, (b) the default mix, (c) knowledge-aware
    facts (:func:`knowledge_aware_data`). All from the mid-trained model, same steps and seed.

    Returns ``{"runs": {"no refusals": record, "default mix": record, "knowledge-aware": record},
    "removed": conversations removed for (a), "knowledge": the probe's summary}``; each eval holds
    ``hallucination_rate`` (eval_unknown people) and ``false_refusal_rate`` (eval_known people).
    """
    setup = _setup(budget, setup, progress, device)
    no_refusals, removed = without(setup.data["train"], "refusals", refuses)
    runs = {"no refusals": train_run(setup, "no refusals", no_refusals), "default mix": default_run(setup)}
    aware, knowledge = knowledge_aware_data(setup)
    runs["knowledge-aware"] = train_run(setup, "knowledge-aware", aware)
    return {"runs": runs, "removed": removed, "knowledge": knowledge}


def identity_study(budget: Budget | str | None = None, setup: AblationSetup | None = None, progress: bool = True,
                   device: str | None = None) -> dict:
    """SFT with the identity conversations (the default mix) and without any (multi-turn chats in
    which the model introduces itself removed too); the identity probe of each.

    Returns ``{"runs": {"with identity": record, "without identity": record}, "removed": n}``; each
    record's ``identity`` holds the rate and the (question, reply) pairs.
    """
    setup = _setup(budget, setup, progress, device)
    no_identity, removed = without(setup.data["train"], "identity", introduces_itself)
    return {"runs": {"with identity": default_run(setup),
                     "without identity": train_run(setup, "no identity", no_identity)}, "removed": removed}


def sft_ablations(budget: Budget | str | None = None, progress: bool = True, device: str | None = None,
                  setup: AblationSetup | None = None) -> dict:
    """All four studies on one shared setup (the default-mix run is done once). A JSON-ready dict:
    the settings, ``bootstrap``, ``data_size``, ``refusals``, ``identity``, how many runs were
    trained and the time."""
    started = time.perf_counter()
    setup = _setup(budget, setup, progress, device)
    results = {"budget": setup.budget.name, "device": setup.device,
               "config": {"steps": setup.config.steps, "batch_size": setup.config.batch_size, "lr": setup.config.lr,
                          "warmup_steps": setup.config.warmup_steps, "eval_n": setup.config.eval_n,
                          "seed": setup.config.seed, "stage_steps": setup.budget.sft.steps,
                          "stage_eval_n": setup.budget.sft.eval_n}}
    results["bootstrap"] = bootstrap_study(setup=setup)
    results["data_size"] = data_size_sweep(setup=setup)
    results["refusals"] = refusal_study(setup=setup)
    results["identity"] = identity_study(setup=setup)
    results["default_source"] = setup.runs[DEFAULT_RUN]["source"]
    results["runs_trained"] = setup.trained
    results["seconds"] = round(time.perf_counter() - started, 1)
    return json.loads(json.dumps(results))  # as the artifact reads it back: lists, string keys


# ----------------------------------------------------------------------------------------------
# The artifact

# Bump when these ablations change what they run or record.
SFT_ABLATIONS_VERSION = 1


def path(budget: Budget) -> Path:
    """Keyed by the mid-trained model the runs start from, every SFT setting (the ablation ones
    included) and the world."""
    k = content_key(midtrain=midtrain.path(budget).name, sft=repr(sorted(asdict(budget.sft).items())),
                    world=repr(budget.world), sft_version=sft.SFT_VERSION, version=SFT_ABLATIONS_VERSION,
                    **sft.chat_data_contents(budget.sft.chat_dataset))
    return artifact_dir(budget) / f"sft-ablations-{k}.json"


def artifact(budget: Budget | str | None = None, progress: bool = True, device: str | None = None) -> dict:
    """Chapter 08's four SFT studies (:func:`sft_ablations`): their results, run the first time (about
    a dozen short SFT runs, from the mid-trained model, itself built if missing) and saved as
    ``sft-ablations-<key>.json`` (written atomically when all are done); loaded after."""
    budget = as_budget(budget)
    file = path(budget)
    if not file.exists():
        write_json(file, sft_ablations(budget, progress=progress, device=device))
    return read_json(file)


# ----------------------------------------------------------------------------------------------
# Tables


def study_evals(study: dict) -> dict[str, dict]:
    """``{run name: eval results}`` of a study, for :func:`minilm.evals.chat_eval.format_eval_table` and
    :func:`minilm.plots.sft.plot_eval_bars`."""
    return {name: record["eval"] for name, record in study["runs"].items()}


def sweep_evals(sweep: dict) -> dict[int, dict]:
    """``{conversations: eval results}`` of the data-size sweep, for :func:`minilm.plots.sft.plot_size_sweep`."""
    return {record["size"]: record["eval"] for record in sweep["runs"]}


RUN_COLUMNS = ("run", "start", "conversations", "steps x rows", "passes over the data", "train loss",
               "val loss (assistant tokens)", "where from")


def _number(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def run_rows(study: dict) -> list[list[str]]:
    """One row per run of a study: start, data, steps, passes, losses, where the run comes from.

    >>> record = {"init": "random", "conversations": 40, "steps": 10, "batch_size": 4, "passes": 2.5,
    ...           "train_loss": 1.23456, "val_loss": None, "source": "trained here (10 steps)"}
    >>> run_rows({"runs": {"random init + SFT": record}})[0][:6]
    ['random init + SFT', 'random', '40', '10 x 4', '2.5', '1.235']
    """
    return [[name, r["init"], str(r["conversations"]), f"{r['steps']} x {r['batch_size']}", f"{r['passes']:g}",
             _number(r["train_loss"]), _number(r["val_loss"]), r["source"]] for name, r in study["runs"].items()]


def _percent(entry: dict) -> str:
    return f"{entry['accuracy']:.0%} [{entry['ci_low']:.0%}, {entry['ci_high']:.0%}]"


SWEEP_COLUMNS = ("conversations", "passes", "format", *CATEGORIES)


def sweep_rows(sweep: dict) -> list[list[str]]:
    """One row per data size: passes over the data, format compliance and accuracy per category
    (95% intervals)."""
    return [[str(r["size"]), f"{r['passes']:g}", _percent(r["eval"]["format"]),
             *[_percent(r["eval"]["categories"][c]) for c in CATEGORIES]] for r in sweep["runs"]]


HALLUCINATION_COLUMNS = ("run", "hallucination (unknown people)", "false refusal (seen people)", "facts accuracy",
                   "right refusals (unknown people)")


def hallucination_rows(study: dict) -> list[list[str]]:
    """One row per run: hallucination and false-refusal rates, facts accuracy, right refusals."""
    return [[name, _percent(r["eval"]["rates"]["hallucination"]), _percent(r["eval"]["rates"]["false_refusal"]),
             _percent(r["eval"]["categories"]["facts"]), _percent(r["eval"]["categories"]["unknown"])]
            for name, r in study["runs"].items()]


IDENTITY_COLUMNS = ("run", "names itself", "question", "reply", "right?")


def identity_rows(study: dict, replies: int = 2) -> list[list[str]]:
    """Per run, the identity rate and its first ``replies`` (question, reply) pairs, one per row,
    each reply marked right (names the model) or wrong."""
    from ..evals.probes import names_itself

    rows = []
    for name, r in study["runs"].items():
        identity = r["identity"]
        for n, (question, reply) in enumerate(identity["replies"][:replies]):
            first = n == 0
            mark = "✓ names itself" if names_itself(reply) else "✗ does not"
            rows.append([name if first else "", f"{identity['named']}/{identity['n']}" if first else "", question,
                         reply.strip() or "(empty)", mark])
    return rows

