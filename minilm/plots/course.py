"""The course map of chapter 00: the chapters as a flow in two rows, coloured by lifecycle phase.

The chapters come in as data (:data:`minilm.course.CHAPTERS` and its phases), so the map draws
whatever the course lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


# Fill colours per phase (light tints, readable under black text, distinct in grey scale too).
PHASE_COLOURS = {
    "all phases": "#d4d4d4",
    "pre-training": "#9cc9ea",
    "inference-time": "#ffd27f",
    "post-training": "#f2a7b0",
}
# Darker edges of the same hues, used for upcoming chapters (dashed outline, no fill).
PHASE_EDGES = {
    "all phases": "#7a7a7a",
    "pre-training": "#3a7fb5",
    "inference-time": "#c98a00",
    "post-training": "#c2495a",
}


def _box(ax, x, y, w, h, ch, available: bool, lines: Sequence[tuple[str, dict]]):
    from matplotlib.patches import FancyBboxPatch

    if available:
        style = dict(facecolor=PHASE_COLOURS[ch.phase], edgecolor="#222222", linewidth=1.6, linestyle="-")
        colour = "#000000"
    else:
        style = dict(facecolor="#ffffff", edgecolor=PHASE_EDGES[ch.phase], linewidth=1.3, linestyle=(0, (4, 2)))
        colour = "#6b6b6b"
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.06",
                                mutation_aspect=1, zorder=2, **style))
    step = 0.155  # the same line spacing in every box, the block centred vertically
    for n, (text, kwargs) in enumerate(lines):
        ax.text(x, y + step * ((len(lines) - 1) / 2 - n), text, ha="center", va="center", color=colour, zorder=3, **kwargs)


def _bracket(ax, x0, x1, y, tick, label, colour, above: bool):
    ax.plot([x0, x0, x1, x1], [y - tick, y, y, y - tick], color=colour, linewidth=1.2, solid_capstyle="butt")
    ax.text((x0 + x1) / 2, y + (0.05 if above else -0.05), label, ha="center", va="bottom" if above else "top",
            fontsize=8.5, color=colour, fontweight="bold")


def plot_lifecycle_map(chapters: Sequence, phases: Sequence[str], ax=None, notebooks_dir: Path | str | None = None,
                       commands: dict[int, str] | None = None):
    """Draw ``chapters`` (:class:`minilm.course.Chapter`, numbered 0 to 14) as a flow in two rows,
    coloured by phase (``phases`` in the legend's order); returns the Axes. ``commands``: chapter
    number -> the command that builds its stage, written at the foot of its box.

    Available chapters (their notebook exists) are filled with a solid outline; upcoming ones are
    dashed and grey. Brackets name the phase of each run of chapters.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, Patch
    from matplotlib.path import Path as MplPath

    if ax is None:
        _, ax = plt.subplots(figsize=(11, 4.5))
    ax.set_xlim(-0.5, 7.5)
    ax.set_ylim(-0.62, 2.32)
    ax.set_axis_off()
    ax.set_title(f"The life of an LLM in this course: {len(chapters)} chapters from raw bytes to a reasoning model",
                 fontsize=12, fontweight="bold", pad=6)

    w, h = 0.9, 0.62
    top, bottom = 1.55, 0.45
    places = {0: (0, (top + bottom) / 2)}
    places.update({n: (n, top) for n in range(1, 8)})
    places.update({n: (n - 7, bottom) for n in range(8, 15)})

    for ch in chapters:
        x, y = places[ch.number]
        height = h if ch.number else top - bottom + h
        keywords = "start here" if ch.number == 0 else ch.keywords
        lines = [(ch.code, dict(fontsize=11, fontweight="bold")), (ch.stage, dict(fontsize=8.5)),
                 (keywords, dict(fontsize=7, style="italic"))]
        if commands and ch.number in commands:
            lines.append((commands[ch.number], dict(fontsize=6.5, family="monospace")))
        _box(ax, x, y, w, height, ch, ch.is_available(notebooks_dir), lines)

    arrow = dict(arrowstyle="-|>", mutation_scale=11, color="#444444", linewidth=1.1, zorder=1)
    for a in range(0, 14):
        if a == 7:
            continue
        (x0, y0), (x1, y1) = places[a], places[a + 1]
        y = y1 if a == 0 else y0
        ax.add_patch(FancyArrowPatch((x0 + w / 2, y), (x1 - w / 2, y), shrinkA=0, shrinkB=0, **arrow))
    # 07 -> 08 wraps to the next row like a line of text: down, back to the left, down.
    (x7, _), (x8, _) = places[7], places[8]
    mid = (top + bottom) / 2
    path = MplPath([(x7, top - h / 2), (x7, mid), (x8, mid), (x8, bottom + h / 2)],
                   [MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO, MplPath.LINETO])
    ax.add_patch(FancyArrowPatch(path=path, **arrow))

    # Brackets naming the phase of each run of chapters: above the top row, below the bottom row.
    runs, current = [], None
    for ch in chapters[1:]:
        row = "top" if ch.number <= 7 else "bottom"
        if current and current[0] == ch.phase and current[1] == row:
            current[3] = ch.number
        else:
            current = [ch.phase, row, ch.number, ch.number]
            runs.append(current)
    for phase, row, first, last in runs:
        x0, x1 = places[first][0] - w / 2 + 0.04, places[last][0] + w / 2 - 0.04
        if row == "top":
            _bracket(ax, x0, x1, top + h / 2 + 0.12, 0.06, phase, PHASE_EDGES[phase], above=True)
        else:
            _bracket(ax, x0, x1, bottom - h / 2 - 0.12, -0.06, phase, PHASE_EDGES[phase], above=False)

    handles = [Patch(facecolor=PHASE_COLOURS[p], edgecolor=PHASE_EDGES[p], label=p) for p in phases]
    handles += [Patch(facecolor="#eeeeee", edgecolor="#222222", linewidth=1.6, label="available now"),
                Patch(facecolor="#ffffff", edgecolor="#7a7a7a", linewidth=1.3, linestyle="--",
                      label="coming later"),
                Line2D([], [], color="#444444", marker=">", markersize=5, linewidth=1.1, label="order to follow")]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.03), ncol=len(handles),
              fontsize=8.5, frameon=False, handlelength=1.6, columnspacing=1.4)
    return ax
