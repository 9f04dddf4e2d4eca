"""The course map: chapter records, availability from the notebooks folder, the figure, the tables."""

import doctest
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

import minilm.course  # noqa: E402
from minilm.core.config import BUDGETS, repo_root  # noqa: E402
from minilm.course import (  # noqa: E402
                           BUDGET_ROWS,
                           CHAPTERS,
                           PHASES,
                           budgets_table,
                           chapter,
                           chapters_table,
                           default_notebooks_dir,
                           )
from minilm.plots.course import plot_lifecycle_map  # noqa: E402
from minilm.core.tables import markdown_table  # noqa: E402

STAGES = ["orientation", "tokenization", "data", "transformer", "pretraining", "scaling laws", "inference",
          "mid-training", "SFT", "reward models", "RLHF", "RLVR", "distillation", "reasoning", "capstone"]


@pytest.fixture
def notebooks(tmp_path):
    """A notebooks folder holding chapters 00 and 01 only."""
    for name in ("00_orientation.ipynb", "01_tokenization.ipynb"):
        (tmp_path / name).write_text("{}")
    return tmp_path


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_fifteen_chapters_in_order():
    assert [ch.number for ch in CHAPTERS] == list(range(15))
    assert [ch.code for ch in CHAPTERS] == [f"{n:02d}" for n in range(15)]
    assert [ch.stage for ch in CHAPTERS] == STAGES


def test_records_are_complete_and_consistent():
    for ch in CHAPTERS:
        assert ch.notebook.startswith(ch.code + "_") and ch.notebook.endswith(".ipynb")
        assert ch.phase in PHASES
        for text in (ch.title, ch.stage, ch.keywords, ch.builds, ch.measures):
            assert text.strip() == text and text
    assert len({ch.notebook for ch in CHAPTERS}) == len(CHAPTERS)
    assert chapter(8).stage == "SFT" and chapter(1).phase == "pre-training"
    assert {chapter(n).phase for n in range(8, 13)} == {"post-training"}
    assert chapter(6).phase == chapter(13).phase == "inference-time"


def test_unknown_chapter_is_a_clear_error():
    with pytest.raises(KeyError, match="no chapter 15"):
        chapter(15)


def test_availability_follows_the_notebooks_folder(notebooks):
    assert [ch.number for ch in CHAPTERS if ch.is_available(notebooks)] == [0, 1]
    (notebooks / "02_data.ipynb").write_text("{}")
    assert chapter(2).is_available(notebooks)
    (notebooks / "00_orientation.ipynb").unlink()
    assert not chapter(0).is_available(notebooks)


def test_a_differently_named_notebook_still_counts(tmp_path):
    (tmp_path / "03_attention_and_gpt.ipynb").write_text("{}")
    assert chapter(3).is_available(tmp_path)
    assert chapter(3).path(tmp_path).name == "03_attention_and_gpt.ipynb"
    assert not chapter(4).is_available(tmp_path)


def test_checkout_availability_matches_files_on_disk():
    folder = default_notebooks_dir()
    if repo_root() is None:
        assert folder is None and not any(ch.available for ch in CHAPTERS)
        return
    for ch in CHAPTERS:
        assert ch.available == any(folder.glob(f"{ch.code}_*.ipynb"))
    # Chapters 00 and 01 exist in the course checkout once written; the map then marks them available.
    for number in (0, 1):
        if (folder / CHAPTERS[number].notebook).is_file():
            assert CHAPTERS[number].available


def test_chapters_table_lists_every_chapter(notebooks):
    table = chapters_table(notebooks)
    lines = table.splitlines()
    assert len(lines) == 2 + len(CHAPTERS)
    for ch, line in zip(CHAPTERS, lines[2:]):
        assert line.startswith(f"| {ch.code} |")
        assert ch.title in line and ch.builds in line
        assert line.endswith("| available |" if ch.number in (0, 1) else "| coming |")
    assert "[Tokenization](01_tokenization.ipynb)" in table
    assert "[Data]" not in table
    assert "](" not in chapters_table(notebooks, links=False)


def test_markdown_table_escapes_pipes():
    assert markdown_table(["a"], [["x|y"]]).splitlines()[-1] == "| x\\|y |"


def test_budgets_table_is_a_few_rows_per_stage_read_from_the_budgets():
    table = budgets_table()
    lines = table.splitlines()
    assert lines[0] == "| stage |  | smoke | laptop | gpu |"
    assert len(lines) == 2 + 3 + len(BUDGET_ROWS) <= 20
    assert f"| tokenizer | vocabulary | {BUDGETS['smoke'].tokenizer.vocab_size:,} | " in table
    assert "| 4,000 steps x 32 x 64 tokens (8.2M tokens) |" in table  # laptop
    tiny = {"tiny": replace(BUDGETS["smoke"], pretrain=replace(BUDGETS["smoke"].pretrain, depth=1))}
    assert "| pretrain | model | depth 1, width 64 |" in budgets_table(tiny)


def test_lifecycle_map_draws_with_a_title(notebooks):
    ax = plot_lifecycle_map(CHAPTERS, PHASES, notebooks_dir=notebooks)
    assert ax.get_title()
    assert not ax.axison
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == len(CHAPTERS)
    labels = [t.get_text() for t in ax.texts]
    for ch in CHAPTERS:
        assert ch.code in labels and ch.stage in labels
    for phase in ("pre-training", "post-training", "inference-time"):
        assert phase in labels
    # Available chapters are drawn solid, upcoming ones dashed.
    solid = [b for b in boxes if b.get_linestyle() == "-"]
    assert len(solid) == 2
    ax.figure.canvas.draw()


def test_lifecycle_map_text_stays_inside_boxes_and_does_not_overlap(notebooks):
    ax = plot_lifecycle_map(CHAPTERS, PHASES, notebooks_dir=notebooks)
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, FancyBboxPatch)]
    texts = [t for t in ax.texts if t.get_text()]
    extents = [t.get_window_extent(renderer) for t in texts]
    for text, extent in zip(texts, extents):
        centre = (extent.x0 + extent.width / 2, extent.y0 + extent.height / 2)
        for box in boxes:
            if box.contains(*centre):
                assert box.x0 < extent.x0 and extent.x1 < box.x1, f"{text.get_text()!r} overflows its box"
    for i, a in enumerate(extents):
        for j in range(i + 1, len(extents)):
            assert not a.overlaps(extents[j]), f"{texts[i].get_text()!r} overlaps {texts[j].get_text()!r}"


def test_lifecycle_map_draws_into_a_given_axes(notebooks):
    fig, ax = plt.subplots(figsize=(11, 4.5))
    assert plot_lifecycle_map(CHAPTERS, PHASES, ax, notebooks_dir=notebooks) is ax
    assert fig.axes == [ax]


def test_docstring_examples():
    result = doctest.testmod(minilm.course)
    assert result.attempted > 0 and result.failed == 0
