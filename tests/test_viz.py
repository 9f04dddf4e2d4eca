"""The notebooks' shared plots and token display: titles and labels on every figure, clear errors."""

import matplotlib

matplotlib.use("Agg")  # no display in CI

import matplotlib.pyplot as plt
import pytest

from minilm.plots.viz import LiveLossPlot, plot_bytes_per_token, plot_mixture, plot_training_curves, tokens_html

HISTORY = [{"step": 10, "loss": 4.0}, {"step": 20, "loss": 3.0, "val_loss": 3.2, "val_bpb": 2.5},
           {"step": 30, "loss": 2.5}, {"step": 40, "loss": 2.2, "val_loss": 2.6, "val_bpb": 2.1}]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_tokens_html_escapes_text_and_marks_newlines():
    page = tokens_html(["<b>", " a\n", "한국어", "🙂"], [1, 2, 3, 4])
    assert page.count("<span") == 4 and "&lt;b&gt;" in page and "<b>" not in page
    assert "↵<br>" in page and 'title="id 3"' in page and "한국어" in page and "🙂" in page
    assert tokens_html([]).count("<span") == 0


def test_tokens_html_needs_one_id_per_piece():
    with pytest.raises(ValueError, match="2 pieces and 1 ids"):
        tokens_html(["a", "b"], [1])


def test_every_plot_has_a_title_and_labelled_axes():
    axes = [plot_bytes_per_token([256, 512, 1024], [2.0, 2.6, 3.1], {"GPT-4 (cl100k_base)": 3.9}),
            plot_mixture({"shakespeare": 2_000_000, "world": 500_000}), *plot_training_curves(HISTORY)]
    for ax in axes:
        assert ax.get_title() and ax.get_xlabel()
    assert [ax.get_ylabel() for ax in axes[2:]] == ["cross-entropy (nats / token)", "bits per byte"]
    # The validation curves are drawn from the evaluation steps only.
    assert list(axes[3].lines[0].get_xdata()) == [20, 40]
    labels = [text.get_text() for text in axes[1].texts]
    assert labels == [" 2.00M (80%)", " 0.50M (20%)"]


@pytest.mark.parametrize("call, message", [
    (lambda: plot_bytes_per_token([256, 512], [2.0]), "2 vocabulary sizes and 1 values"),
    (lambda: plot_mixture({}), "positive total"),
    (lambda: plot_mixture({"a": 0, "b": 0}), "positive total"),
    (lambda: plot_mixture({"a": 5, "b": -1}), "counts >= 0"),
    (lambda: plot_mixture({"a": float("nan")}), "counts >= 0"),
    (lambda: plot_training_curves([{"step": 1, "loss": 2.0}, {"step": 2}]), r"history\[1\] has no 'step' or 'loss'"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_live_loss_plot_draws_into_one_display_and_adds_nothing_to_history(monkeypatch):
    shown = []

    class Handle:
        def update(self, figure):
            shown.append(("update", figure))

    def display(figure, display_id=False):
        shown.append(("display", figure))
        return Handle()

    monkeypatch.setattr("IPython.display.display", display)
    hook = LiveLossPlot("Live")
    assert hook(20, None, HISTORY[:2]) == {} and hook(40, None, HISTORY) == {}
    assert [kind for kind, _ in shown] == ["display", "update"]
    assert shown[1][1].axes[0].get_title() == "Live: loss"
    assert not plt.get_fignums()  # each figure is closed once shown, or a long run would pile them up
