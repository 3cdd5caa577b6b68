"""Static figures of attributions for papers: PNG, SVG or PDF files drawn with matplotlib's Agg renderer.

Same color scale as the HTML pages: each row is divided by its largest absolute attribution, red is evidence
for the target, blue against, grey (hatched in heat maps) marks elements that cannot influence it (NaN).
Classification draws the text as a paragraph of colored words, one block per target; generation draws a heat
map of continuation tokens (rows) by prompt elements and continuation tokens (columns).

Figures are built on `matplotlib.figure.Figure` directly: the user's pyplot state and backend are never
touched, only the bundled DejaVu Sans font is used, and files carry no timestamp (two calls give the same
bytes).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from interpreto.attribution.output import AttributionOutput

POSITIVE_RGB = (220, 38, 38)
NEGATIVE_RGB = (37, 99, 235)
MAX_ALPHA = 0.85
NAN_COLOR = "#f2f2f2"
HATCH_COLOR = "#bdbdbd"
MAX_LABEL_CHARS = 14

_METADATA = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}
_RC = {
    "font.family": "DejaVu Sans",
    "svg.fonttype": "none",  # element labels stay <text>, searchable and editable
    "svg.hashsalt": "interpreto",  # fixed ids for clip paths and hatch patterns
    "pdf.fonttype": 42,
}
_FIG_WIDTH_PT = 576.0  # 8 inches
_MARGIN_PT = 18.0
_WORD_SIZE = 11.0
_LINE_PT = 21.0
_GAP_PT = 6.0
_CELL_IN = 0.3


def _matplotlib():
    try:
        import matplotlib
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("Static figures need matplotlib: `pip install matplotlib`.") from error
    return matplotlib


def _blend(rgb: tuple[int, int, int], alpha: float) -> tuple[float, float, float]:
    """`rgb` at opacity `alpha` over white, as the HTML pages' rgba backgrounds render."""
    return tuple((1 - alpha) + alpha * c / 255 for c in rgb)


def signed_colormap():
    """The diverging colormap of the HTML pages: -1 blue, 0 white, +1 red; NaN transparent.

    Examples:
        >>> cmap = signed_colormap()
        >>> [round(float(c), 3) for c in cmap(1.0)[:3]]
        [0.883, 0.277, 0.277]
    """
    colors = _matplotlib().colors
    cmap = colors.LinearSegmentedColormap.from_list(
        "interpreto_signed",
        [_blend(NEGATIVE_RGB, MAX_ALPHA), (1.0, 1.0, 1.0), _blend(POSITIVE_RGB, MAX_ALPHA)],
    )
    return cmap.with_extremes(bad=(0.0, 0.0, 0.0, 0.0))


def _normalized(values: np.ndarray) -> np.ndarray:
    """Each row divided by its largest absolute finite value (rows of zeros or NaN stay as they are)."""
    scale = np.nanmax(np.abs(np.where(np.isnan(values), 0.0, values)), axis=1, keepdims=True)
    return values / np.where(scale > 0, scale, 1.0)


def _truncate(label: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    """One-line label: newlines shown as the return symbol, long labels cut with an ellipsis."""
    label = label.replace("\r", "").replace("\n", "\u23ce").replace("\t", " ")
    if not label.strip():
        label = "\u2423" * max(1, len(label))  # whitespace-only elements stay visible
    return label if len(label) <= max_chars else label[: max_chars - 1] + "\u2026"


def _target_label(output: AttributionOutput, row: int) -> str:
    name = output.target_names[row] if row < len(output.target_names) else str(output.targets[row])
    if output.contrast_names:
        name = f"{name} vs {output.contrast_names[row]}"
    return name


def _title(output: AttributionOutput) -> str:
    return f"{output.method or 'attribution'} \u00b7 {output.task} \u00b7 score: {output.score}"


def _text_width_pt(text: str, size: float, weight: str = "normal") -> float:
    """Width in points of `text` drawn in DejaVu Sans (no renderer needed)."""
    mpl = _matplotlib()
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(family="DejaVu Sans", size=size, weight=weight)
    with mpl.rc_context(_RC):
        width, _, _ = TextToPath().get_text_width_height_descent(text, prop, ismath=False)
    return width


def _paragraph_layout(output: AttributionOutput, width_pt: float) -> tuple[list[list[tuple]], float]:
    """Per target: (x, line, label, value) of each element wrapped like words; returns the height in points."""
    inner = width_pt - 2 * _MARGIN_PT
    labels = [_truncate(element.strip() or element, 40) for element in output.elements]
    widths = [_text_width_pt(label, _WORD_SIZE) + 2 * 3.0 for label in labels]
    blocks, height = [], 0.0
    values = output.attributions.detach().float().cpu().numpy()
    for row in range(values.shape[0]):
        x, line, placed = 0.0, 0, []
        for label, width, value in zip(labels, widths, _normalized(values[row : row + 1])[0], strict=True):
            if x > 0 and x + width > inner:
                x, line = 0.0, line + 1
            placed.append((x, line, label, float(value)))
            x += width + _GAP_PT
        blocks.append(placed)
        height += 22.0 + (line + 1) * _LINE_PT + 8.0
    return blocks, height


def _draw_legend(fig: Figure, left: float, bottom: float, width: float, height: float) -> None:
    """Colorbar from -1 to 1 plus a 'no influence' swatch, in figure fractions."""
    mpl = _matplotlib()
    cax = fig.add_axes((left, bottom, width, height))
    mappable = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(-1, 1), cmap=signed_colormap())
    bar = fig.colorbar(mappable, cax=cax, orientation="horizontal", ticks=[-1, 0, 1])
    bar.ax.set_xticklabels(["-1 against", "0", "+1 for"], fontsize=7)
    bar.set_label("attribution / max |attribution| of the row", fontsize=7)
    cax.text(
        1.06, 0.5, "no influence", transform=cax.transAxes, va="center", ha="left", fontsize=7,
        bbox={"boxstyle": "square,pad=0.3", "facecolor": NAN_COLOR, "edgecolor": HATCH_COLOR, "hatch": "///"},
    )  # fmt: skip


def _classification_figure(output: AttributionOutput) -> Figure:
    from matplotlib.figure import Figure

    blocks, body_pt = _paragraph_layout(output, _FIG_WIDTH_PT)
    legend_pt = 70.0
    height_pt = _MARGIN_PT + 20.0 + body_pt + legend_pt
    fig = Figure(figsize=(_FIG_WIDTH_PT / 72, height_pt / 72))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, _FIG_WIDTH_PT)
    ax.set_ylim(height_pt, 0)  # y in points from the top
    ax.text(_MARGIN_PT, _MARGIN_PT, _title(output), fontsize=10, color="#555555", va="top", parse_math=False)
    y = _MARGIN_PT + 22.0
    for row, placed in enumerate(blocks):
        label = f"{_target_label(output, row)}  ({output.score} {float(output.scores[row]):.3f})"
        ax.text(_MARGIN_PT, y, label, fontsize=10, fontweight="bold", va="top", parse_math=False)
        y += 22.0
        for x, line, text, value in placed:
            if math.isnan(value):
                face, color = NAN_COLOR, "#999999"
            else:
                face, color = (
                    _blend(POSITIVE_RGB if value > 0 else NEGATIVE_RGB, abs(value) * MAX_ALPHA),
                    "#222",
                )
            ax.text(
                _MARGIN_PT + x + 3.0, y + line * _LINE_PT + _LINE_PT / 2, text, fontsize=_WORD_SIZE,
                va="center", ha="left", color=color, parse_math=False,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": face, "edgecolor": "none"},
            )  # fmt: skip
        y += (max(line for _, line, _, _ in placed) + 1 if placed else 1) * _LINE_PT + 8.0
    _draw_legend(fig, 0.25, 38.0 / height_pt, 0.4, 10.0 / height_pt)
    return fig


def _generation_figure(output: AttributionOutput) -> Figure:
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    values = _normalized(output.attributions.detach().float().cpu().numpy())
    n_rows, n_cols = values.shape
    left, right, top, bottom = 1.3, 0.4, 0.6, 1.9  # inches around the heat map, room for labels and legend
    width = max(left + n_cols * _CELL_IN + right, 6.0)
    height = top + n_rows * _CELL_IN + bottom
    left += (width - left - n_cols * _CELL_IN - right) / 2  # center narrow heat maps
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((left / width, bottom / height, n_cols * _CELL_IN / width, n_rows * _CELL_IN / height))
    # NaN cells are left transparent over this hatched grey background
    ax.add_patch(
        Rectangle((-0.5, -0.5), n_cols, n_rows, facecolor=NAN_COLOR, edgecolor=HATCH_COLOR, hatch="///",
                  linewidth=0, zorder=0)
    )  # fmt: skip
    ax.pcolormesh(
        np.arange(n_cols + 1) - 0.5, np.arange(n_rows + 1) - 0.5, np.ma.masked_invalid(values),
        cmap=signed_colormap(), vmin=-1, vmax=1, edgecolors="white", linewidth=0.5, zorder=1,
    )  # fmt: skip
    ax.set_xlim(-0.5, n_cols - 0.5)
    ax.set_ylim(n_rows - 0.5, -0.5)  # first continuation token on top
    if output.n_prompt_elements is not None and 0 < output.n_prompt_elements < n_cols:
        ax.axvline(output.n_prompt_elements - 0.5, color="#222222", linewidth=1.2, zorder=2)
    ax.set_xticks(range(n_cols), [_truncate(e) for e in output.elements], rotation=90, fontsize=8)
    ax.set_yticks(range(n_rows), [_truncate(_target_label(output, r)) for r in range(n_rows)], fontsize=8)
    for tick in ax.get_xticklabels() + ax.get_yticklabels():
        tick.set_parse_math(False)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("prompt elements, then continuation tokens", fontsize=8)
    ax.set_ylabel("continuation token", fontsize=8)
    fig.text(0.5, 1 - 0.25 / height, _title(output), ha="center", va="center", fontsize=10, parse_math=False)
    _draw_legend(fig, 0.3, 0.45 / height, 0.35, 0.1 / height)
    return fig


def attribution_figure(output: AttributionOutput) -> Figure:
    """A matplotlib `Figure` (Agg canvas, not registered with pyplot) drawing one explanation.

    Args:
        output: an `AttributionOutput`; `task="generation"` gives a heat map, anything else colored text.

    Returns:
        The figure, ready for `savefig` or to be shown in a notebook.

    Examples:
        >>> import torch
        >>> from interpreto import AttributionOutput
        >>> out = AttributionOutput(text="Nice film", elements=["Nice", "film"],
        ...     attributions=torch.tensor([[0.7, -0.1]]), targets=[1], target_names=["positive"],
        ...     scores=torch.tensor([2.3]))
        >>> float(attribution_figure(out).get_figwidth())
        8.0
    """
    mpl = _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with mpl.rc_context(_RC):
        fig = _generation_figure(output) if output.task == "generation" else _classification_figure(output)
    FigureCanvasAgg(fig)
    return fig


def save_figure(
    outputs: AttributionOutput | list[AttributionOutput],
    path: str | Path,
    format: str | None = None,
    dpi: float = 150,
) -> Path:
    """Writes a static figure of an explanation (PNG, SVG or PDF) with no timestamp, and returns its path.

    Args:
        outputs: an `AttributionOutput`, or a list holding exactly one (write one file per explanation).
        path: the file to write; its suffix gives the format unless `format` is set.
        format: `"png"`, `"svg"` or `"pdf"`.
        dpi: resolution of PNG files.

    Returns:
        `path` as a `Path`.

    Examples:
        >>> import tempfile, torch
        >>> from interpreto import AttributionOutput
        >>> out = AttributionOutput(text="Nice film", elements=["Nice", "film"],
        ...     attributions=torch.tensor([[0.7, -0.1]]), targets=[1], target_names=["positive"],
        ...     scores=torch.tensor([2.3]))
        >>> svg = save_figure(out, tempfile.mkdtemp() + "/nice.svg").read_text()
        >>> ">Nice<" in svg
        True
    """
    if isinstance(outputs, (list, tuple)):
        if len(outputs) != 1:
            raise ValueError(
                f"save_figure draws one explanation, got {len(outputs)}: call it once per output."
            )
        outputs = outputs[0]
    path = Path(path)
    format = (format or path.suffix.lstrip(".")).lower()
    if format not in _METADATA:
        raise ValueError(f"format={format!r} is not supported: use one of {sorted(_METADATA)}.")
    fig = attribution_figure(outputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _matplotlib().rc_context(_RC):
        fig.savefig(path, format=format, dpi=dpi, metadata=_METADATA[format], facecolor="white")
    return path
