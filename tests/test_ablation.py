"""minilm.studies.ablation: the variants differ by the components they name; runs are seeded and measured."""

import doctest

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import minilm.studies.ablation  # noqa: E402
import minilm.plots.transformer  # noqa: E402
from minilm.studies.ablation import (  # noqa: E402
                                     RESULT_HEADERS, SETUPS, VERDICTS, ablation_setup, compare_seeds, describe, kv_cache_bytes_per_token, results_rows, run_ablation,
                                     run_variant, variant_configs,
                                     )
from minilm.core.config import BUDGETS  # noqa: E402
from minilm.models.gpt import GPT, KVCache  # noqa: E402
from minilm.plots.transformer import plot_flops_by_component, plot_loss_curves  # noqa: E402
from minilm.models.train import TrainConfig  # noqa: E402

torch.set_num_threads(2)

SHAPE = dict(n_layer=1, n_embd=32, n_head=4, block_size=16)
FIELDS = ("norm", "mlp", "position", "bias", "n_kv_head")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    # A learnable stream: mostly a repeating pattern, some noise.
    stream = np.tile(np.arange(20, dtype=np.uint16), 300)
    noise = rng.random(len(stream)) < 0.1
    stream[noise] = rng.integers(0, 40, noise.sum())
    return stream[:5000], stream[5000:], np.ones(40, dtype=np.int64)


TINY_TRAIN = TrainConfig(steps=6, batch_size=4, seq_len=16, warmup_steps=1, eval_every=0, lr=3e-3)


def changed(config, base):
    return {f for f in FIELDS if getattr(config, f) != getattr(base, f)}


def test_each_variant_changes_what_its_name_says():
    configs = variant_configs(300, SHAPE, kv_heads=2)
    assert list(configs) == ["GPT-2", "+ RMSNorm", "+ RoPE", "+ SwiGLU", "modern", "modern + GQA"]
    base = configs["GPT-2"]
    assert (base.norm, base.mlp, base.position, base.bias) == ("layernorm", "gelu", "learned", True)
    assert changed(configs["+ RMSNorm"], base) == {"norm"}
    assert changed(configs["+ RoPE"], base) == {"position"}
    assert changed(configs["+ SwiGLU"], base) == {"mlp"}
    assert changed(configs["modern"], base) == {"norm", "mlp", "position", "bias"}
    assert changed(configs["modern + GQA"], configs["modern"]) == {"n_kv_head"}
    assert configs["modern + GQA"].kv_heads == 2
    for config in configs.values():  # same shape everywhere
        assert (config.n_layer, config.n_embd, config.n_head, config.block_size, config.vocab_size) == (1, 32, 4, 16, 300)


def test_describe_names_the_components():
    configs = variant_configs(300, SHAPE, kv_heads=1)
    assert describe(configs["GPT-2"]) == "LayerNorm · GELU · learned pos · biases"
    assert describe(configs["modern + GQA"]) == "RMSNorm · SwiGLU · RoPE · 1 KV head · no biases"


@pytest.mark.parametrize("name", ["modern", "modern + GQA", "GPT-2"])
def test_kv_cache_bytes_match_the_cache_the_model_allocates(name):
    config = variant_configs(300, SHAPE, kv_heads=1)[name]
    cache = KVCache(config, batch_size=1, max_len=10, dtype=torch.float32)
    per_token = (cache.k.numel() + cache.v.numel()) * 4 / 10
    assert kv_cache_bytes_per_token(config, bytes_per_value=4) == per_token
    assert kv_cache_bytes_per_token(config) == per_token / 2


@pytest.mark.parametrize("budget", list(BUDGETS))
def test_every_budget_has_a_setup_whose_variants_build(budget):
    setup = ablation_setup(budget)
    assert setup is SETUPS[budget]
    assert setup.train.seq_len <= setup.shape["block_size"]
    with torch.device("meta"):  # shapes only, no memory
        for config in variant_configs(BUDGETS[budget].tokenizer.vocab_size, setup.shape, setup.kv_heads).values():
            assert GPT(config).num_params() > 0


def test_a_run_is_seeded_and_measured(data):
    train_tokens, val_tokens, byte_lengths = data
    config = variant_configs(40, SHAPE)["modern"]
    a = run_variant("modern", config, train_tokens, val_tokens, TINY_TRAIN, byte_lengths, eval_tokens=256)
    b = run_variant("modern", config, train_tokens, val_tokens, TINY_TRAIN, byte_lengths, eval_tokens=256)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.val == b.val and set(a.val) == {"loss", "perplexity", "bpb"}
    assert len(a.losses) == TINY_TRAIN.steps and a.losses[-1] < a.losses[0]
    assert a.params == a.model.num_params() and not a.model.training
    assert a.tokens_per_s > 0 and a.seconds > 0
    other = run_variant("modern", config, train_tokens, val_tokens, TINY_TRAIN, byte_lengths, eval_tokens=256, seed=1,
                        keep_model=False)
    assert other.seed == 1 and other.model is None and other.losses[0] != a.losses[0]


def test_ablation_runs_every_variant_with_every_seed_and_judges_by_seeds(data):
    train_tokens, val_tokens, byte_lengths = data
    configs = dict(list(variant_configs(40, SHAPE).items())[:2])
    runs = run_ablation(configs, train_tokens, val_tokens, TINY_TRAIN, byte_lengths, eval_tokens=256,
                        seeds=(0, 7, 9), progress=False)
    assert [(r.name, r.seed) for r in runs] == [("GPT-2", 0), ("+ RMSNorm", 0), ("GPT-2", 7), ("+ RMSNorm", 7),
                                                 ("GPT-2", 9), ("+ RMSNorm", 9)]
    assert runs[0].model is not None and runs[2].model is None  # only the first seed's models are kept
    rows = results_rows(runs)
    assert len(rows) == 2 and all(len(row) == len(RESULT_HEADERS) for row in rows)
    gpt2 = [r.val["bpb"] for r in runs if r.name == "GPT-2"]
    rms = [r.val["bpb"] for r in runs if r.name == "+ RMSNorm"]
    assert rows[0][3] == f"{np.mean(gpt2):.4f} ± {np.std(gpt2, ddof=1):.4f}" and rows[0][4] == "—"
    assert float(rows[1][4]) == pytest.approx(np.mean(rms) - np.mean(gpt2), abs=1e-4)
    assert rows[1][5] == VERDICTS[compare_seeds(rms, gpt2)]
    ax = plot_loss_curves(runs, TINY_TRAIN.tokens_per_step)
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and len(ax.lines) == 6
    assert len(ax.get_legend_handles_labels()[1]) == 2  # one label per variant
    plt.close("all")
    with pytest.raises(ValueError, match="different seeds"):
        run_ablation(configs, train_tokens, val_tokens, TINY_TRAIN, seeds=(1, 1), progress=False)


def test_ablation_in_two_processes_gives_the_runs_of_one_process(data):
    train_tokens, val_tokens, byte_lengths = data
    configs = dict(list(variant_configs(40, SHAPE).items())[:2])
    kwargs = dict(eval_tokens=256, seeds=(0, 7), progress=False)
    here = run_ablation(configs, train_tokens, val_tokens, TINY_TRAIN, byte_lengths, **kwargs)
    spawned = run_ablation(configs, train_tokens, val_tokens, TINY_TRAIN, byte_lengths, workers=2, **kwargs)
    assert [(r.name, r.seed) for r in spawned] == [(r.name, r.seed) for r in here]
    for a, b in zip(here, spawned):  # one thread there, maybe two here: the same sums in another order
        assert b.val["bpb"] == pytest.approx(a.val["bpb"], rel=1e-4)
        assert b.losses == pytest.approx(a.losses, rel=1e-4)
    assert spawned[0].model is not None and spawned[2].model is None


@pytest.mark.parametrize("a, b, verdict", [
    ([1.0, 1.1, 1.2], [1.3, 1.4, 1.5], "lower"),
    ([1.3, 1.4, 1.5], [1.0, 1.1, 1.2], "higher"),
    ([1.0, 1.35, 1.2], [1.3, 1.4, 1.5], "overlap"),
    ([1.0], [1.0], "overlap"),  # a tie is no difference
])
def test_compare_seeds_calls_a_difference_only_when_the_seeds_separate(a, b, verdict):
    assert compare_seeds(a, b) == verdict


def test_flops_chart_shows_shares_and_totals():
    ax = plot_flops_by_component({"a": {"mlp": 3e6, "attention": 1e6}, "b": {"mlp": 1e6, "attention": 1e6}})
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([75, 50, 25, 50])
    assert ax.get_title() and ax.get_xlabel()
    assert [t.get_text() for t in ax.texts] == ["4.0 M", "2.0 M"]
    plt.close("all")


@pytest.mark.parametrize("module", [minilm.studies.ablation, minilm.plots.transformer])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
