"""Chapter 08's SFT ablations: each study's structure, that compared runs differ only in what they
should (a spy on train_sft), nested sweep data, the shared default run, and the cached artifact.

All on the smoke world with a tiny model and tokenizer built here, and a few steps per run."""

import json
from collections import Counter
from dataclasses import replace

import matplotlib
import pytest
import torch

import minilm.studies.sft_ablations as ablations
from minilm.core.config import get_budget
from minilm.evals.chat_eval import CATEGORIES, is_refusal
from minilm.text.world import people_split
from minilm.models.gpt import GPT, GPTConfig
from minilm.data.conversations import conversations, mix_conversations
from minilm.text.tokenizer import Tokenizer
from minilm.text.world import World

matplotlib.use("Agg")
torch.set_num_threads(1)

MIX = (("facts", 16), ("refusals", 8), ("arithmetic", 6), ("arithmetic_worked", 4), ("calculator", 2),
       ("letters", 4), ("multi_turn", 6), ("identity", 4))
SIZES = (6, 20)


@pytest.fixture(scope="module")
def budget():
    smoke = get_budget("smoke")
    return smoke.with_overrides(sft=replace(smoke.sft, mix=MIX, batch_size=4, val_conversations=4, sweep_sizes=SIZES,
                                            ablation_steps=3, ablation_eval_n=2))


@pytest.fixture(scope="module")
def tiny(budget):
    """A BPE over the world and its conversations, and a one-layer model: fast, and conversations fit."""
    world = World(budget.world)
    data = conversations(world, replace(budget.sft, mix=tuple((s, 3 * n) for s, n in MIX)))
    texts = world.biographies() + [m["content"] for convs in data.values() for c in convs for m in c]
    tokenizer = Tokenizer.train("\n".join(texts), vocab_size=500)
    torch.manual_seed(1234)  # not the ablation's seed: the random-init run must start elsewhere
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=128, n_layer=1, n_head=2, n_embd=32))
    return model.eval(), tokenizer


def key(conversation) -> str:
    return json.dumps(conversation)


@pytest.fixture(scope="module")
def study(budget, tiny):
    """All four studies on one setup, every train_sft call recorded (start weights, data, config)."""
    calls = []
    real = ablations.train_sft

    def spy(model, tokenizer, convs, config, **kwargs):
        calls.append({"weights": {k: v.clone() for k, v in model.state_dict().items()}, "convs": list(convs),
                      "config": config, "val": kwargs.get("val_convs")})
        return real(model, tokenizer, convs, config, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ablations, "train_sft", spy)
        setup = ablations.make_setup(budget, device="cpu", progress=False, model=tiny[0], tokenizer=tiny[1])
        results = ablations.sft_ablations(setup=setup)
    return {"setup": setup, "results": results, "calls": calls}


def same_weights(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def check_eval(evaluation: dict, n: int = 2):
    assert set(evaluation["categories"]) == set(CATEGORIES)
    for entry in [*evaluation["categories"].values(), evaluation["format"]]:
        assert 0 <= entry["ci_low"] <= entry["accuracy"] <= entry["ci_high"] <= 1
    assert all(evaluation["categories"][c]["n"] == n for c in CATEGORIES)
    assert 0 <= evaluation["hallucination_rate"] <= 1 and 0 <= evaluation["false_refusal_rate"] <= 1


# -- every run --------------------------------------------------------------------------------


def test_every_run_is_trained_once_with_the_ablation_settings(study, budget):
    results, calls, setup = study["results"], study["calls"], study["setup"]
    # default, random init, two sweep sizes, no refusals, knowledge-aware, no identity: the default
    # run is shared by three studies and trained once.
    assert len(calls) == results["runs_trained"] == 7
    assert results["default_source"] == "trained here (3 steps)"
    for call in calls:
        assert (call["config"].steps, call["config"].eval_n, call["config"].seed) == (3, 2, budget.sft.seed)
        assert call["config"] == calls[0]["config"] and call["val"] == calls[0]["val"]
    assert results["config"]["stage_steps"] == budget.sft.steps == 12
    for record in setup.runs.values():
        check_eval(record["eval"])
        assert record["steps"] == 3 and record["history"][-1]["step"] == 3 and record["val_loss"] > 0
        assert record["passes"] == pytest.approx(3 * 4 / record["rows"], abs=0.01)
    json.dumps(results)  # what the artifact stores


# -- pretraining as bootstrapping ---------------------------------------------------------------


def test_bootstrap_runs_differ_only_in_their_start(study, tiny):
    runs = study["results"]["bootstrap"]["runs"]
    assert list(runs) == ["mid-trained + SFT", "random init + SFT"]
    assert [r["init"] for r in runs.values()] == ["mid-trained", "random"]
    pretrained, scratch = study["calls"][:2]
    start = tiny[0].state_dict()
    assert same_weights(pretrained["weights"], start) and not same_weights(scratch["weights"], start)
    assert pretrained["convs"] == scratch["convs"] and pretrained["config"] == scratch["config"]
    # the random start is seeded: the same weights every time
    again = ablations._random_model(tiny[0].config, study["setup"].config.seed).state_dict()
    assert same_weights(scratch["weights"], again)


# -- the data-size sweep ------------------------------------------------------------------------


def test_sweep_data_sets_are_nested_and_trained_alike(study, tiny):
    sweep = study["results"]["data_size"]
    assert sweep["sizes"] == list(SIZES) and sweep["nested"] is True
    assert [r["size"] for r in sweep["runs"]] == list(SIZES) == [r["conversations"] for r in sweep["runs"]]
    small, large = study["calls"][2:4]
    assert len(small["convs"]) == SIZES[0] and len(large["convs"]) == SIZES[1]
    assert not Counter(map(key, small["convs"])) - Counter(map(key, large["convs"]))  # a subset
    assert same_weights(small["weights"], tiny[0].state_dict()) and small["config"] == large["config"]
    # same steps for every size: the small set is seen more often
    assert sweep["runs"][0]["passes"] > sweep["runs"][1]["passes"]
    for record in sweep["runs"]:
        check_eval(record["eval"])
    assert ablations.sweep_evals(sweep)[SIZES[0]] == sweep["runs"][0]["eval"]


def test_sweep_rejects_bad_sizes(study):
    for sizes, words in (((), "empty"), ((0, 10), "0"), ((2.5,), "2.5")):
        with pytest.raises(ValueError, match=words):
            ablations.data_size_sweep(sizes=sizes, setup=study["setup"])


def test_a_sweep_size_equal_to_the_default_mix_reuses_the_default_run(study):
    setup = study["setup"]
    trained = setup.trained
    total = sum(n for _, n in MIX)
    sweep = ablations.data_size_sweep(sizes=[total], setup=setup)
    assert setup.trained == trained  # nothing new trained
    assert sweep["runs"][0]["name"] == ablations.DEFAULT_RUN and sweep["runs"][0]["size"] == total


# -- refusals -----------------------------------------------------------------------------------


def test_refusal_runs_differ_only_in_their_refusal_data(study, budget):
    setup, study_results = study["setup"], study["results"]["refusals"]
    runs = study_results["runs"]
    assert list(runs) == ["no refusals", "default mix", "knowledge-aware"]
    default, no_refusals, aware = study["calls"][0], study["calls"][4], study["calls"][5]
    assistant = [m["content"] for c in no_refusals["convs"] for m in c if m["role"] == "assistant"]
    assert not any(is_refusal(text) for text in assistant)
    assert "refusals" not in runs["no refusals"]["counts"]
    # (a) is (b) less every conversation that refuses somewhere (multi-turn ones too)
    left_out = Counter(map(key, default["convs"])) - Counter(map(key, no_refusals["convs"]))
    assert sum(left_out.values()) == study_results["removed"] == len(default["convs"]) - len(no_refusals["convs"])
    assert study_results["removed"] > MIX[1][1]  # the refusals source and multi-turn chats with a refusal
    assert not Counter(map(key, no_refusals["convs"])) - Counter(map(key, default["convs"]))
    # (c): the default mix with its facts replaced (same number, same places in the mix)
    assert len(aware["convs"]) == len(default["convs"])
    changed = [i for i, (a, b) in enumerate(zip(default["convs"], aware["convs"])) if a != b]
    facts = {key(c) for c in setup.data["train"]["facts"]}
    assert changed and all(key(default["convs"][i]) in facts for i in changed)
    data, knowledge = ablations.knowledge_aware_data(setup)  # the probe is seeded: the same data again
    assert mix_conversations(data, setup.config.seed) == aware["convs"]
    known = {p.name for p in people_split(setup.world)["sft_known"]}
    for conversation in data["facts (knowledge-aware)"]:
        assert any(name in conversation[0]["content"] for name in known)
    assert knowledge["facts"] == 4 * len(known) == knowledge["known"] + knowledge["unknown"]
    assert study_results["knowledge"]["facts"] == knowledge["facts"]
    for name, record in runs.items():
        check_eval(record["eval"])
    rows = ablations.hallucination_rows(study_results)
    assert [r[0] for r in rows] == list(runs) and all(len(r) == len(ablations.HALLUCINATION_COLUMNS) for r in rows)


# -- identity -----------------------------------------------------------------------------------


def test_identity_runs_differ_only_in_the_identity_data(study):
    identity = study["results"]["identity"]
    assert list(identity["runs"]) == ["with identity", "without identity"]
    default, without = study["calls"][0], study["calls"][6]
    assert not any("minilm" in m["content"].lower() for c in without["convs"] for m in c if m["role"] == "assistant")
    assert any("minilm" in m["content"].lower() for c in default["convs"] for m in c if m["role"] == "assistant")
    assert not Counter(map(key, without["convs"])) - Counter(map(key, default["convs"]))
    assert identity["removed"] == len(default["convs"]) - len(without["convs"]) >= MIX[-1][1]
    for record in identity["runs"].values():
        probe = record["identity"]
        assert probe["n"] == len(probe["replies"]) and probe["rate"] == pytest.approx(probe["named"] / probe["n"])
    rows = ablations.identity_rows(identity)
    assert rows[0][:2] == ["with identity", f"{identity['runs']['with identity']['identity']['named']}/6"]
    assert all(len(row) == len(ablations.IDENTITY_COLUMNS) for row in rows)
    assert all(row[4] == ("✓ names itself" if "minilm" in row[3].lower() else "✗ does not") for row in rows)


# -- reuse of the main SFT model, tables, plots, the artifact ------------------------------------


def test_default_run_is_the_main_sft_model_when_the_steps_match(study, budget, tiny, monkeypatch):
    import minilm.stages.sft

    setup = study["setup"]
    record = setup.runs[ablations.DEFAULT_RUN]
    summary = {"config": {"eval_n": 2}, "eval": {"after": record["eval"]}, "identity": {"after": record["identity"]},
               "history": record["history"], "data": {"rows": 7}, "train_seconds": 1.0}
    monkeypatch.setattr(minilm.stages.sft, "artifact", lambda *a, **k: (tiny[0], tiny[1], summary))
    monkeypatch.setattr(ablations, "train_sft", lambda *a, **k: pytest.fail("the default run must not train"))
    same = budget.with_overrides(sft=replace(budget.sft, ablation_steps=budget.sft.steps))
    reuse = replace(setup, budget=same, config=ablations.ablation_config(same), main_sft=True, runs={}, trained=0)
    run = ablations.default_run(reuse)
    assert run["source"].startswith("the main SFT stage") and run["steps"] == budget.sft.steps == 12
    assert run["rows"] == 7 and run["eval"] is record["eval"] and reuse.trained == 0


def test_tables_and_plots(study):
    from minilm.plots.sft import plot_eval_bars, plot_refusal_study, plot_refusal_tradeoff, plot_size_sweep

    results = study["results"]
    rows = ablations.run_rows(results["bootstrap"])
    assert [r[1] for r in rows] == ["mid-trained", "random"] and all(len(r) == len(ablations.RUN_COLUMNS) for r in rows)
    rows = ablations.sweep_rows(results["data_size"])
    assert [r[0] for r in rows] == [str(s) for s in SIZES] and len(rows[0]) == len(ablations.SWEEP_COLUMNS)
    ax = plot_size_sweep(ablations.sweep_evals(results["data_size"]), steps=3)
    assert ax.get_xscale() == "log" and ax.get_xlabel() and ax.get_ylabel() and "3 steps" in ax.get_title()
    assert len(ax.get_lines()) == len(CATEGORIES) + 1
    ax = plot_refusal_study(ablations.study_evals(results["refusals"]))
    assert len(ax.patches) == 3 * 3 and ax.get_title()
    evals = ablations.study_evals(results["refusals"])
    ax = plot_refusal_tradeoff(evals)
    assert "%" in ax.get_xlabel() and "%" in ax.get_ylabel() and ax.get_title()
    assert [c.get_label() for c in ax.containers] == list(evals)
    points = [c.lines[0].get_xydata()[0].tolist() for c in ax.containers]
    assert points == [[100 * r["rates"]["false_refusal"]["accuracy"], 100 * r["rates"]["hallucination"]["accuracy"]]
                      for r in evals.values()]
    ax = plot_eval_bars(ablations.study_evals(results["bootstrap"]))
    assert len(ax.patches) == 2 * (len(CATEGORIES) + 1)


def test_make_setup_rejects_a_model_without_its_tokenizer(budget, tiny):
    with pytest.raises(ValueError, match="both model and tokenizer"):
        ablations.make_setup(budget, model=tiny[0])


def test_artifact_is_built_once_then_loaded(isolated_runs, monkeypatch):
    from minilm.stages import sft
    from minilm.studies import sft_ablations

    built = []
    monkeypatch.setattr(ablations, "sft_ablations", lambda budget, progress, device: built.append(budget.name) or
                        {"budget": budget.name, "bootstrap": {"runs": {}}})
    smoke = get_budget("smoke")
    first = sft_ablations.artifact(smoke, progress=False)
    second = sft_ablations.artifact(smoke, progress=False)
    assert built == ["smoke"] and first == second == {"budget": "smoke", "bootstrap": {"runs": {}}}
    path = sft_ablations.path(smoke)
    assert path.exists() and path.parent == isolated_runs / "artifacts" / "smoke"
    assert not list(path.parent.glob("*.tmp"))
    # other ablation settings: another artifact; the SFT model's key ignores them
    other = smoke.with_overrides(sft=replace(smoke.sft, ablation_steps=5))
    assert sft_ablations.path(other) != path
    assert sft.path(other) == sft.path(smoke)
