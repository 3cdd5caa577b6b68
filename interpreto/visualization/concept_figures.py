"""Static figures of concept pages and overviews, drawn like `interpreto.visualization.figures`: on a
`matplotlib.figure.Figure` with an Agg canvas (pyplot and the user's backend untouched), DejaVu Sans only, no
timestamp in the files. Tokens are boxes coloured like the HTML pages (|activation| / the concept's largest
|activation|, red positive, blue negative), the example's own tokens bold and outlined; the histogram axes
(labelled "activation histogram") draws the counts of `ConceptStats` as bars on a log-count axis.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from interpreto.visualization.figures import (
    _METADATA,
    _RC,
    MAX_ALPHA,
    NEGATIVE_RGB,
    POSITIVE_RGB,
    _blend,
    _matplotlib,
    _text_width_pt,
    _truncate,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from interpreto.visualization.concept_overview import ConceptOverview
    from interpreto.visualization.concept_page import ConceptPage

HISTOGRAM_LABEL = "activation histogram"
_W, _M = 576.0, 18.0  # figure width and margin, points
_TOKEN_SIZE, _TOKEN_LINE = 9.5, 19.0
_VALUE_W = 46.0  # room for an example's activation before its tokens
_HIST_H = 130.0


@lru_cache(maxsize=4096)
def _width(text: str, bold: bool) -> float:
    return _text_width_pt(text, _TOKEN_SIZE, "bold" if bold else "normal")


def token_face(activation: float, scale: float) -> tuple[float, float, float]:
    """The box colour of a token: the HTML highlight (alpha = |activation| / scale * 0.85) over white."""
    if scale <= 0 or math.isnan(activation) or activation == 0:
        return (1.0, 1.0, 1.0)
    alpha = min(abs(activation) / scale, 1.0) * MAX_ALPHA
    return _blend(POSITIVE_RGB if activation > 0 else NEGATIVE_RGB, alpha)


def _token_boxes(example, scale: float, width: float, window: int | None) -> list[tuple]:
    """(x, line, label, face, focus, scored) of each context token, wrapped within `width` points."""
    start, end = example.focus
    indices = range(len(example.context))
    if window is not None:
        indices = range(max(0, start - window), min(len(example.context), end + window))
    x, line, boxes = 0.0, 0, []
    for index in indices:
        token = example.context[index]
        focus = start <= index < end
        label = _truncate(token.text.strip() or token.text, 24)
        gap = 4.0 if token.text[:1].isspace() and x > 0 else 1.0
        w = _width(label, focus) + 4.0
        if x > 0 and x + gap + w > width:
            x, line, gap = 0.0, line + 1, 0.0
        scored = getattr(token, "scored", True)
        boxes.append((x + gap, line, label, token_face(float(token.activation), scale), focus, scored))
        x += gap + w
    return boxes


def _draw_example(ax, example, scale: float, y: float, window: int | None = None) -> float:
    """Draws an example's value and tokens from the top `y`; returns the y below it."""
    ax.text(_M, y + _TOKEN_LINE / 2, f"{example.activation:.4g}", fontsize=8, color="#555555", va="center")
    boxes = _token_boxes(example, scale, _W - 2 * _M - _VALUE_W, window)
    for x, line, label, face, focus, scored in boxes:
        ax.text(
            _M + _VALUE_W + x + 2.0, y + line * _TOKEN_LINE + _TOKEN_LINE / 2, label, fontsize=_TOKEN_SIZE,
            va="center", ha="left", color="#222222" if scored else "#999999", parse_math=False,
            fontweight="bold" if focus else "normal",
            bbox={"boxstyle": "round,pad=0.2", "facecolor": face if scored else "white",
                  "edgecolor": "#222222" if focus else "none", "linewidth": 0.9},
        )  # fmt: skip
    lines = max((line for _, line, *_ in boxes), default=0) + 1
    return y + lines * _TOKEN_LINE + 4.0


def _side_lines(page: ConceptPage) -> list[tuple[str, str, str, str, bool]]:
    """Right-column rows (left text, left value, right text, right value, is heading) of a page figure."""
    rows = []
    if page.scores:
        rows.append(("label scores", "", "", "", True))
        rows += [(_truncate(name, 38), "", "", f"{value:.3f}", False) for name, value in page.scores.items()]
    lens = page.logit_lens
    if lens is not None:
        rows.append(("logit lens: top", "", "bottom", "", True))
        for k in range(max(len(lens.top), len(lens.bottom))):
            cells = []
            for pairs in (lens.top, lens.bottom):
                token, value = pairs[k] if k < len(pairs) else ("", None)
                cells += [
                    _truncate(token, 12) if value is not None else "",
                    f"{value:.3g}" if value is not None else "",
                ]
            rows.append((*cells, False))
    return rows


def _draw_histogram(fig, page: ConceptPage, top_pt: float, height_pt: float) -> None:
    left, width = _M + 34.0, 250.0
    bottom = height_pt - (top_pt + _HIST_H)
    ax = fig.add_axes((left / _W, bottom / height_pt, width / _W, _HIST_H / height_pt), label=HISTOGRAM_LABEL)
    stats = page.stats
    if stats.counts.size:
        ax.bar(stats.edges[:-1], stats.counts, width=np.diff(stats.edges), align="edge", log=True,
               color=_blend(POSITIVE_RGB, MAX_ALPHA), edgecolor="white", linewidth=0.3)  # fmt: skip
        ax.set_ylim(0.7, max(2.0, float(stats.counts.max()) * 1.5))
    else:
        ax.text(
            0.5, 0.5, "no nonzero activation", ha="center", va="center", transform=ax.transAxes, fontsize=8
        )
        ax.set_yticks([])
    ax.tick_params(labelsize=7)
    ax.set_xlabel("activation (nonzero, scored tokens)", fontsize=7)
    ax.set_ylabel("count (log)", fontsize=7)


def page_figure(page: ConceptPage) -> Figure:
    """The figure of a `ConceptPage` (use `page.figure()`)."""
    mpl = _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with mpl.rc_context(_RC):
        side = _side_lines(page)
        panel_pt = max(14.0 + _HIST_H + 30.0, 12.0 * len(side) + 8.0)
        top_examples = _M + 42.0 + panel_pt + 8.0
        layout, y = [], top_examples + 16.0
        for example in page.examples:  # measure first: the height depends on the wrapping
            boxes = _token_boxes(example, page.stats.scale, _W - 2 * _M - _VALUE_W, None)
            layout.append(y)
            y += (max((line for _, line, *_ in boxes), default=0) + 1) * _TOKEN_LINE + 4.0
        height_pt = y + _M
        fig = Figure(figsize=(_W / 72, height_pt / 72))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, _W)
        ax.set_ylim(height_pt, 0)
        title = f"Concept {page.concept}: " + _truncate(page.label or "(no label)", 70)
        ax.text(_M, _M, title, fontsize=13, fontweight="bold", va="top", parse_math=False)
        stats = page.stats
        line = (
            f"density {100 * stats.density:.3g}% ({stats.n_firing} of {stats.n_scored} scored tokens > 0)"
            f"  \u00b7  max activation {stats.max_activation:.4g}"
        )
        ax.text(_M, _M + 22.0, line, fontsize=9, color="#555555", va="top", parse_math=False)
        panel_top = _M + 42.0
        ax.text(_M, panel_top, "activations", fontsize=9, fontweight="bold", va="top")
        _draw_histogram(fig, page, panel_top + 14.0, height_pt)
        for k, (a, a_value, b, b_value, heading) in enumerate(side):
            row_y = panel_top + 12.0 * k
            weight, color = ("bold", "#222222") if heading else ("normal", "#333333")
            for text, x, ha in ((a, 330.0, "left"), (a_value, 440.0, "right"), (b, 452.0, "left"),
                                (b_value, _W - _M, "right")):  # fmt: skip
                if text:
                    ax.text(x, row_y, text, fontsize=8, fontweight=weight, color=color, va="top", ha=ha,
                            parse_math=False)  # fmt: skip
        ax.text(_M, top_examples, "top examples (activation, context; the example outlined)", fontsize=9,
                fontweight="bold", va="top")  # fmt: skip
        for example, example_y in zip(page.examples, layout, strict=True):
            _draw_example(ax, example, page.stats.scale, example_y)
    FigureCanvasAgg(fig)
    return fig


def overview_figure(overview: ConceptOverview, window: int = 5) -> Figure:
    """The figure of a `ConceptOverview` (use `overview.figure()`): per concept a header line and its top
    examples, each cut to `window` tokens around the example."""
    mpl = _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with mpl.rc_context(_RC):
        blocks, y = [], _M + 24.0
        for row in overview.rows:
            starts, cursor = [], y + 30.0
            for example in row.examples:
                starts.append(cursor)
                boxes = _token_boxes(example, row.stats.scale, _W - 2 * _M - _VALUE_W, window)
                cursor += (max((line for _, line, *_ in boxes), default=0) + 1) * _TOKEN_LINE + 4.0
            blocks.append((row, y, starts))
            y = cursor + 8.0
        height_pt = y + _M
        fig = Figure(figsize=(_W / 72, height_pt / 72))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(0, _W)
        ax.set_ylim(height_pt, 0)
        ax.text(
            _M, _M, _truncate(overview.title, 80), fontsize=12, fontweight="bold", va="top", parse_math=False
        )
        for row, top, starts in blocks:
            ax.plot([_M, _W - _M], [top - 4.0, top - 4.0], color="#dddddd", linewidth=0.8)
            header = f"#{row.concept}  " + _truncate(row.label or "(no label)", 70)
            ax.text(_M, top, header, fontsize=10, fontweight="bold", va="top", parse_math=False)
            numbers = [f"density {100 * row.stats.density:.3g}%", f"max {row.stats.max_activation:.4g}"]
            numbers += [
                f"{_truncate(n, 36)} {row.scores[n]:.3f}" for n in overview.score_names if n in row.scores
            ]
            ax.text(_M, top + 14.0, "  \u00b7  ".join(numbers), fontsize=8, color="#555555", va="top",
                    parse_math=False)  # fmt: skip
            for example, start in zip(row.examples, starts, strict=True):
                _draw_example(ax, example, row.stats.scale, start, window=window)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: str | Path, dpi: float = 150) -> Path:
    """Writes `fig` as a PNG with no timestamp and returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _matplotlib().rc_context(_RC):
        fig.savefig(path, format="png", dpi=dpi, metadata=_METADATA["png"], facecolor="white")
    return path
