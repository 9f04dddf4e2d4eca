"""Chapter 06 plots and widgets: they draw what filtered_probs gives, label tokens, and run headless."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from minilm.plots import inference as plots  # noqa: E402
from minilm.models.gpt import padded_causal_mask  # noqa: E402


@pytest.fixture(scope="module")
def logits(small_tokenizer):
    torch.manual_seed(0)
    return torch.randn(small_tokenizer.vocab_size) * 3


def test_entropy_in_bits():
    assert plots.entropy_bits(torch.full((8,), 1 / 8)) == pytest.approx(3.0)
    assert plots.entropy_bits(torch.tensor([1.0, 0.0])) == 0.0


def test_distribution_plot_shows_the_filtered_probabilities(small_tokenizer, logits):
    import matplotlib.pyplot as plt

    ax = plots.plot_distribution(small_tokenizer, logits, {"top_k": 3}, top=6)
    bars = ax.patches
    raw, shaped = [b.get_height() for b in bars[:6]], [b.get_height() for b in bars[6:]]
    assert raw == sorted(raw, reverse=True) and sum(h > 0 for h in shaped) == 3
    assert sum(shaped) == pytest.approx(1.0, abs=1e-5)
    assert "3 tokens possible" in ax.get_title() and ax.get_ylabel() == "probability"
    plt.close("all")


def test_settings_grid_and_explorer_run_without_a_live_kernel(small_tokenizer, logits):
    import matplotlib.pyplot as plt

    axes = plots.plot_sampling_settings(small_tokenizer, logits, {"T=1": {}, "min-p": {"min_p": 0.2}}, top=5)
    assert axes.shape == (1, 3) and axes[0, 1].get_title().startswith("min-p:")
    widget = plots.sampling_explorer(small_tokenizer, logits)
    sliders = [child for box in widget.children[:2] for child in box.children]
    assert [s.description for s in sliders] == ["temperature", "top-k (0=off)", "top-p", "min-p"]
    sliders[1].value = 4  # moving a slider redraws without error
    plt.close("all")


def test_padding_mask_and_throughput_plots_are_labelled():
    import matplotlib.pyplot as plt

    pad = torch.tensor([0, 3])
    axes = plots.plot_padding_mask(padded_causal_mask(pad, 0, 5, 5), pad)
    assert [ax.get_title() for ax in axes] == ["row 0: 0 padding slots", "row 1: 3 padding slots"]
    ax = plots.plot_throughput([1, 2, 4], {"cached": [1.0, 2.0, 3.0]}, "batch size", "Throughput")
    assert ax.get_ylabel() == "generated tokens per second" and ax.get_xlabel() == "batch size"
    plt.close("all")
