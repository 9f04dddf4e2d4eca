"""Chapter 07's control run: the same continuation on the pretraining mix, compared with the
pipeline's annealed model item by item."""

import pytest

from minilm.studies import anneal_control


@pytest.fixture(scope="module")
def control(midtrained, tiny_midtrain_budget):
    runs, *_ = midtrained
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINILM_RUNS", str(runs))
        yield anneal_control.artifact(tiny_midtrain_budget, progress=False)


def test_the_control_trains_like_the_annealed_run_on_the_pretraining_mix(control, midtrained, tiny_midtrain_budget):
    *_, summary = midtrained
    mid = tiny_midtrain_budget.midtrain
    record, anneal = control["runs"]["continue"], summary["runs"]["anneal"]
    assert record["history"][-1]["step"] == mid.steps and record["history"][-1]["lr"] == 0.0
    assert [h["lr"] for h in record["history"]] == [h["lr"] for h in anneal["history"]]  # same schedule
    assert set(control["mixture"]) == set(tiny_midtrain_budget.data.weights()) | {"tool_arithmetic"}
    assert control["mixture"]["tool_arithmetic"]["weight"] == summary["mixture"]["tool_arithmetic"]["weight"]
    assert not list(anneal_control.path(tiny_midtrain_budget).parent.glob("anneal-control-*.partial.*"))


def test_the_comparison_is_annealed_minus_continued_item_by_item(control, midtrained):
    *_, summary = midtrained
    comparison, anneal, other = control["comparison"], summary["runs"]["anneal"], control["runs"]["continue"]
    assert set(comparison) == set(anneal["probes"]) | {"val_loss", "val_bpb"}
    for key, probe in anneal["probes"].items():
        assert len(probe["right"]) == probe["n"] == comparison[key]["n"]
        assert comparison[key]["value"] == pytest.approx(probe["accuracy"] - other["probes"][key]["accuracy"])
    for metric in ("loss", "bpb"):
        d = comparison[f"val_{metric}"]
        # The annealed model's windows are measured again: they must give its summary's figure.
        assert d["value"] == pytest.approx(anneal[f"val_{metric}"] - other[f"val_{metric}"], abs=1e-5)
        assert d["low"] <= d["value"] <= d["high"] and d["verdict"] in ("higher", "lower", "within noise")


def test_the_comparison_figures_have_every_source_and_probe(control, midtrained):
    import matplotlib.pyplot as plt

    from minilm.plots.midtrain import plot_anneal_sources, plot_comparison
    from minilm.stages.midtrain import PROBE_NAMES, comparison_columns, comparison_rows

    *_, summary = midtrained
    both = {**summary, "runs": {**control["runs"], **summary["runs"]}}
    assert comparison_columns(both)[1:] == ("base model", "continue (pretraining mix)", "anneal (curated mix)")
    assert all(len(row) == 4 for row in comparison_rows(both))
    sources = list(summary["runs"]["anneal"]["val_sources"])
    axes = plot_anneal_sources(both)
    assert [ax.get_title() for ax in axes] == sources
    assert all(ax.get_xlabel() and ax.get_ylabel() == "bits per byte" and len(ax.lines) == 2 for ax in axes)
    ax = plot_comparison(control["comparison"], PROBE_NAMES)
    assert ax.get_title() and "percentage points" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == [PROBE_NAMES[k] for k in summary["runs"]["anneal"]["probes"]]
    plt.close("all")
