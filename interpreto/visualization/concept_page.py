"""Concept pages: one concept's label, label scores, top examples, logit lens and activation histogram, and an
overview table of many concepts, as standalone HTML (inline CSS, no script, nothing loaded from outside) or as
a static matplotlib figure (see `interpreto.visualization.concept_figures`).

Every token of an example's context is highlighted by the concept's activation on it, with the colours of the
attribution pages (red for positive, blue for negative activations): the opacity is |activation| divided by
the concept's largest |activation| over the scored tokens of the `ConceptCodes` (its max activation when the
concept is non-negative, as SAE concepts are), capped at 1. The example's own tokens are outlined and bold;
tokens left out of rankings (the attention-sink position) are shown grey, uncoloured. The density is the
fraction of scored tokens where the concept's activation is > 0; the histogram counts the nonzero activations
of the scored tokens in `bins` equal bins (`numpy.histogram`), on a log-count axis. Every token, label and
score name is escaped with `html.escape`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interpreto.visualization.html import _STYLE as _BASE_STYLE
from interpreto.visualization.html import _color

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from interpreto.concepts.interpret import ConceptCodes, ConceptExample, LogitLens

_STYLE = (
    _BASE_STYLE
    + """
.interpreto-concept { margin-bottom: 2em; }
.interpreto-concept h2 { margin: 0.2em 0; }
.interpreto-concept h3 { font-size: 1em; margin: 0.8em 0 0.3em; }
.interpreto-label { font-weight: normal; color: #444; }
.interpreto-panels { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
.interpreto-table { border-collapse: collapse; font-size: 0.9em; }
.interpreto-table th, .interpreto-table td { padding: 0.2em 0.6em; border-bottom: 1px solid #e5e5e5;
  text-align: left; vertical-align: top; }
.interpreto-table td.interpreto-num { text-align: right; font-variant-numeric: tabular-nums; }
.interpreto-examples td { line-height: 1.9; }
.interpreto-tok { white-space: pre-wrap; padding: 0.12em 0; border-radius: 0.2em; }
.interpreto-focus { font-weight: 700; outline: 1.5px solid #222; }
.interpreto-unscored { color: #999; }
.interpreto-example { margin: 0.15em 0; line-height: 1.9; }
.interpreto-example .interpreto-value { display: inline-block; min-width: 3.5em; color: #555;
  font-size: 0.85em; }
.interpreto-lens-token { white-space: pre; font-family: ui-monospace, monospace; }
"""
)
_HIST_W, _HIST_H, _HIST_PAD = 320, 140, 28
_NEWLINE = "\u23ce"


@dataclass
class ConceptStats:
    """Numbers about one concept over the scored tokens of a `ConceptCodes`.

    Attributes:
        n_scored: how many scored tokens there are.
        n_firing: how many of them have an activation > 0.
        density: `n_firing / n_scored` (0 when nothing is scored).
        max_activation: the largest activation (NaN when nothing is scored).
        scale: the largest |activation|, which colour intensities are divided by.
        counts: histogram counts of the nonzero activations (`numpy.histogram`, float64 values).
        edges: the histogram's bin edges (`len(counts) + 1` of them; empty when no activation is nonzero).
    """

    n_scored: int
    n_firing: int
    density: float
    max_activation: float
    scale: float
    counts: np.ndarray
    edges: np.ndarray


def concept_stats(codes: ConceptCodes, concept: int, bins: int = 30) -> ConceptStats:
    """Density, max activation and activation histogram of `concept` over the scored tokens of `codes`.

    Examples:
        >>> import torch
        >>> from interpreto.concepts.interpret import ConceptCodes
        >>> codes = ConceptCodes(texts=["a b c d"], tokens=[["a", " b", " c", " d"]],
        ...     codes=[torch.tensor([[9.0], [0.0], [2.0], [-1.0]])], scored=[torch.tensor([False, True, True, True])])
        >>> stats = concept_stats(codes, 0, bins=3)
        >>> stats.density, stats.max_activation, stats.counts.tolist()
        (0.3333333333333333, 2.0, [1, 0, 1])
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins={bins!r}: pass a positive number of histogram bins.")
    values = codes.values(concept)[0].double().numpy()
    nonzero = values[values != 0]
    if nonzero.size:
        counts, edges = np.histogram(nonzero, bins=bins)
    else:
        counts, edges = np.zeros(0, dtype=np.int64), np.zeros(0)
    n_firing = int((values > 0).sum())
    return ConceptStats(
        n_scored=int(values.size),
        n_firing=n_firing,
        density=n_firing / values.size if values.size else 0.0,
        max_activation=float(values.max()) if values.size else math.nan,
        scale=float(np.abs(values).max()) if values.size else 0.0,
        counts=counts,
        edges=edges,
    )


def _num(value: float) -> str:
    return "&ndash;" if value is None or math.isnan(value) else f"{value:.4g}"


def _score_value(value: Any) -> float:
    """A score as a float: a number, or a `LabelScore` (its `.value`)."""
    return float(getattr(value, "value", value))


def display_text(text: str) -> str:
    """A token as shown inline: newlines as the return symbol, carriage returns dropped."""
    return text.replace("\r", "").replace("\n", _NEWLINE)


def _check_examples(examples: list[ConceptExample], concept: int, argument: str) -> list[ConceptExample]:
    examples = list(examples or [])
    for example in examples:
        if example.concept != concept:
            raise ValueError(
                f"{argument}: an example of concept {example.concept} was given for concept {concept}: pass "
                f"the examples of concept {concept} (e.g. TopKInputs(...).interpret(...)[{concept}])."
            )
    return examples


def tokens_html(example: ConceptExample, scale: float) -> str:
    """The example's context, each token highlighted by activation / `scale`, its own tokens outlined."""
    start, end = example.focus
    spans = []
    for index, token in enumerate(example.context):
        classes = ["interpreto-tok"]
        if start <= index < end:
            classes.append("interpreto-focus")
        scored = getattr(token, "scored", True)
        if scored:
            style = f' style="background:{_color(float(token.activation), scale)}"'
            title = f"{float(token.activation):.4g}"
        else:
            classes.append("interpreto-unscored")
            style, title = "", f"{float(token.activation):.4g} (not scored)"
        spans.append(
            f'<span class="{" ".join(classes)}"{style} title="{escape(title)}">'
            f"{escape(display_text(token.text))}</span>"
        )
    return "".join(spans)


def histogram_svg(stats: ConceptStats) -> str:
    """An inline SVG bar chart of the histogram, bar heights proportional to log(1 + count)."""
    if not stats.counts.size:
        return '<div class="interpreto-meta">no nonzero activation</div>'
    top = math.log1p(int(stats.counts.max()))
    inner_w, inner_h = _HIST_W - 2 * _HIST_PAD, _HIST_H - 2 * _HIST_PAD
    width = inner_w / stats.counts.size
    bars = []
    for k, count in enumerate(stats.counts.tolist()):
        height = inner_h * math.log1p(count) / top
        low, high = stats.edges[k], stats.edges[k + 1]
        bars.append(
            f'<rect x="{_HIST_PAD + k * width:.2f}" y="{_HIST_PAD + inner_h - height:.2f}" '
            f'width="{max(width - 1, 0.5):.2f}" height="{height:.2f}" fill="rgb(220, 38, 38)" '
            f'data-count="{count}"><title>[{low:.4g}, {high:.4g}): {count}</title></rect>'
        )
    base = _HIST_PAD + inner_h
    axis = (
        f'<line x1="{_HIST_PAD}" y1="{base}" x2="{_HIST_PAD + inner_w}" y2="{base}" stroke="#555"/>'
        f'<text x="{_HIST_PAD}" y="{base + 14}" font-size="10">{stats.edges[0]:.3g}</text>'
        f'<text x="{_HIST_PAD + inner_w}" y="{base + 14}" font-size="10" text-anchor="end">'
        f"{stats.edges[-1]:.3g}</text>"
        f'<text x="{_HIST_PAD}" y="{_HIST_PAD - 8}" font-size="10">max count {int(stats.counts.max())} '
        "(log scale)</text>"
    )
    return (
        f'<svg class="interpreto-histogram" width="{_HIST_W}" height="{_HIST_H}" role="img" '
        f'aria-label="activation histogram">{"".join(bars)}{axis}</svg>'
    )


def _stats_html(stats: ConceptStats) -> str:
    return (
        f'<div class="interpreto-meta">density <span class="interpreto-density" data-value="{stats.density!r}">'
        f"{100 * stats.density:.3g}%</span> ({stats.n_firing} of {stats.n_scored} scored tokens &gt; 0) "
        f'&middot; max activation <span class="interpreto-max" data-value="{stats.max_activation!r}">'
        f"{_num(stats.max_activation)}</span></div>"
    )


def _page_html(page: ConceptPage) -> str:
    parts = [
        f'<div class="interpreto-concept" data-concept="{page.concept}"><h2>Concept {page.concept} '
        f'<span class="interpreto-label">{escape(page.label or "(no label)")}</span></h2>',
        _stats_html(page.stats),
        '<div class="interpreto-panels">',
    ]
    if page.scores:
        rows = "".join(
            f'<tr><td>{escape(name)}</td><td class="interpreto-num">{_num(value)}</td></tr>'
            for name, value in page.scores.items()
        )
        parts.append(
            '<div><h3>Label scores</h3><table class="interpreto-table interpreto-scores">'
            f"<thead><tr><th>score</th><th>value</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    if page.logit_lens is not None:
        top, bottom = page.logit_lens.top, page.logit_lens.bottom
        rows = []
        for k in range(max(len(top), len(bottom))):
            cells = []
            for pairs in (top, bottom):
                token, value = pairs[k] if k < len(pairs) else ("", math.nan)
                cells.append(
                    f'<td class="interpreto-lens-token">{escape(display_text(token))}</td>'
                    f'<td class="interpreto-num">{_num(float(value)) if k < len(pairs) else ""}</td>'
                )
            rows.append(f"<tr>{''.join(cells)}</tr>")
        parts.append(
            '<div><h3>Logit lens</h3><table class="interpreto-table interpreto-lens"><thead><tr>'
            '<th colspan="2">promoted (top logits)</th><th colspan="2">suppressed (bottom logits)</th></tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
        )
    parts.append(
        f"<div><h3>Activations (nonzero, scored tokens)</h3>{histogram_svg(page.stats)}</div></div>"
        "<h3>Top examples</h3>"
    )
    if page.examples:
        rows = "".join(
            f'<tr><td class="interpreto-num">{rank}</td><td class="interpreto-num">{_num(example.activation)}'
            f'</td><td title="text {example.input_index}, element {example.position}">'
            f"{tokens_html(example, page.stats.scale)}</td></tr>"
            for rank, example in enumerate(page.examples, start=1)
        )
        parts.append(
            '<table class="interpreto-table interpreto-examples"><thead><tr><th>#</th><th>activation</th>'
            f"<th>context (example outlined)</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    else:
        parts.append('<div class="interpreto-meta">no example given</div>')
    parts.append(_legend() + "</div>")
    return "".join(parts)


def _legend() -> str:
    return (
        '<div class="interpreto-meta">colour intensity: |activation| / the concept\'s largest |activation| '
        f'over the scored tokens; <span class="interpreto-tok" style="background:{_color(1, 1)}">positive'
        f'</span> <span class="interpreto-tok" style="background:{_color(-1, 1)}">negative</span> '
        '<span class="interpreto-tok interpreto-focus">example</span> '
        '<span class="interpreto-tok interpreto-unscored">not scored</span>; hover a token for its value</div>'
    )


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def _write(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class _Rendered:
    """HTML and figure methods shared by pages and overviews."""

    title: str

    def _body(self) -> str:
        raise NotImplementedError

    def html(self) -> str:
        """A standalone HTML page (inline CSS, no script, no external resource)."""
        return _document(self.title, self._body())

    def _repr_html_(self) -> str:
        return f"<style>{_STYLE}</style>{self._body()}"

    def save(self, path: str | Path) -> Path:
        """Writes the standalone HTML page to `path` and returns it."""
        return _write(path, self.html())

    def figure(self) -> Figure:
        """A matplotlib `Figure` (Agg canvas, not registered with pyplot) drawing the same content."""
        raise NotImplementedError

    def save_png(self, path: str | Path, dpi: float = 150) -> Path:
        """Writes `figure()` as a PNG file with no timestamp (two calls give the same bytes)."""
        from interpreto.visualization.concept_figures import save_png

        return save_png(self.figure(), path, dpi=dpi)


class ConceptPage(_Rendered):
    """One concept's page: build it with `concept_page`."""

    def __init__(self, concept, label, scores, examples, logit_lens, stats: ConceptStats):
        self.concept, self.label, self.scores = concept, label, scores
        self.examples, self.logit_lens, self.stats = examples, logit_lens, stats
        self.title = f"Concept {concept}" + (f": {label}" if label else "")

    def _body(self) -> str:
        return _page_html(self)

    def figure(self) -> Figure:
        from interpreto.visualization.concept_figures import page_figure

        return page_figure(self)


def concept_page(
    codes: ConceptCodes,
    concept: int,
    examples: list[ConceptExample],
    label: str | None = None,
    scores: dict[str, Any] | None = None,
    logit_lens: LogitLens | None = None,
    bins: int = 30,
) -> ConceptPage:
    """A page describing one concept: label, label scores, top examples, logit lens, activation histogram.

    Args:
        codes: per-token activations of a dataset (`ConceptCodes.compute(explainer, texts)`); the density,
            max activation, histogram and colour scale are computed over its scored tokens.
        concept: the concept index.
        examples: the concept's examples, in the order to show (e.g. `TopKInputs(...).interpret(...)[concept]`).
        label: the concept's label, if any.
        scores: label scores, score name -> value (a number or a `LabelScore`).
        logit_lens: the concept's `LogitLens`, if any.
        bins: the number of histogram bins.

    Returns:
        A `ConceptPage` with `.html()`, `.save(path)`, `.figure()`, `.save_png(path)` and a notebook display.

    Raises:
        ValueError: `concept` is not an index of `codes`, or an example belongs to another concept.

    Examples:
        >>> import torch
        >>> from interpreto.concepts.interpret import ConceptCodes
        >>> codes = ConceptCodes(texts=["<b>hi</b> there"], tokens=[["<b>hi</b>", " there"]],
        ...     codes=[torch.tensor([[2.0], [0.5]])], scored=[torch.tensor([True, True])])
        >>> page = concept_page(codes, 0, [codes.example(0, 0, 0)], label="greeting", scores={"detection": 0.9})
        >>> "&lt;b&gt;hi&lt;/b&gt;" in page.html(), "<b>hi" in page.html()
        (True, False)
    """
    nb_concepts = codes.nb_concepts
    if isinstance(concept, bool) or not isinstance(concept, int) or not 0 <= concept < nb_concepts:
        raise ValueError(
            f"concept={concept!r} is not a concept index of codes: use an integer in [0, {nb_concepts})."
        )
    scores = {str(name): _score_value(value) for name, value in (scores or {}).items()}
    stats = concept_stats(codes, concept, bins=bins)
    return ConceptPage(
        concept, label, scores, _check_examples(examples, concept, "examples"), logit_lens, stats
    )


def __getattr__(name: str):
    # the overview lives in its own module, which imports this one
    if name in ("ConceptOverview", "concept_overview"):
        from interpreto.visualization import concept_overview as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConceptOverview",  # noqa: F822 (from concept_overview, through __getattr__)
    "ConceptPage",
    "ConceptStats",
    "concept_overview",  # noqa: F822
    "concept_page",
    "concept_stats",
]
