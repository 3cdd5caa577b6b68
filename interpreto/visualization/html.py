"""Standalone HTML pages for attributions: every token and label escaped, nothing loaded from outside.

Each element is colored by its signed attribution, normalized by the largest absolute value of its row: red
for evidence for the target, blue for evidence against, grey for elements that cannot influence it (NaN).
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interpreto.attribution.output import AttributionOutput

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #222; }
.interpreto-explanation { margin-bottom: 1.6em; }
.interpreto-meta { color: #555; font-size: 0.9em; margin: 0.2em 0; }
.interpreto-row { margin: 0.35em 0; line-height: 2.1; }
.interpreto-target { display: inline-block; min-width: 10em; font-weight: 600; margin-right: 0.6em; }
.interpreto-el { padding: 0.15em 0.25em; margin: 0 0.08em; border-radius: 0.25em; white-space: pre-wrap; }
.interpreto-nan { color: #aaa; background: #f2f2f2; }
.interpreto-heatmap { border-collapse: collapse; margin: 0.4em 0; }
.interpreto-heatmap th { font-weight: normal; font-size: 0.85em; padding: 0.15em 0.3em; white-space: pre; }
.interpreto-heatmap thead th { vertical-align: bottom; }
.interpreto-heatmap tbody th { text-align: right; }
.interpreto-heatmap td { min-width: 1.6em; height: 1.6em; border: 1px solid #fff; }
.interpreto-heatmap .interpreto-first-continuation { border-left: 2px solid #222; }
.interpreto-legend span { padding: 0.1em 0.5em; margin-right: 0.4em; border-radius: 0.25em; }
"""


def _color(value: float, scale: float) -> str:
    """Red for positive, blue for negative; opacity proportional to |value| / scale."""
    if scale <= 0 or math.isnan(value):
        return "transparent"
    alpha = min(abs(value) / scale, 1.0) * 0.85
    rgb = "220, 38, 38" if value > 0 else "37, 99, 235"
    return f"rgba({rgb}, {alpha:.3f})"


def _row_html(output, row: int) -> str:
    values = output.attributions[row].tolist()
    finite = [abs(v) for v in values if not math.isnan(v)]
    scale = max(finite) if finite else 0.0
    score = float(output.scores[row])
    label = f"{escape(_target_name(output, row))} <small>({escape(output.score)} {score:.3f})</small>"
    cells = []
    for element, value in zip(output.elements, values, strict=True):
        if math.isnan(value):
            cells.append(
                f'<span class="interpreto-el interpreto-nan" title="no influence">{escape(element)}</span>'
            )
        else:
            cells.append(
                f'<span class="interpreto-el" style="background:{_color(value, scale)}" '
                f'title="{value:+.4g}">{escape(element)}</span>'
            )
    return f'<div class="interpreto-row"><span class="interpreto-target">{label}</span>{"".join(cells)}</div>'


def _target_name(output, row: int) -> str:
    name = output.target_names[row] if row < len(output.target_names) else str(output.targets[row])
    return f"{name} vs {output.contrast_names[row]}" if output.contrast_names else name


def _heatmap_html(output) -> str:
    """Generation: a table with one row per continuation token and one column per element."""

    def classes(index: int, *names: str) -> str:
        # a rule between the prompt and the continuation
        names = (*names, "interpreto-first-continuation") if index == output.n_prompt_elements else names
        return f' class="{" ".join(names)}"' if names else ""

    header = "".join(f"<th{classes(i)}>{escape(e)}</th>" for i, e in enumerate(output.elements))
    rows = []
    for row in range(output.attributions.shape[0]):
        values = output.attributions[row].tolist()
        finite = [abs(v) for v in values if not math.isnan(v)]
        scale = max(finite) if finite else 0.0
        cells = []
        for index, (element, value) in enumerate(zip(output.elements, values, strict=True)):
            if math.isnan(value):
                cells.append(
                    f'<td{classes(index, "interpreto-nan")} title="{escape(element)}: no influence"></td>'
                )
            else:
                cells.append(
                    f'<td{classes(index)} style="background:{_color(value, scale)}" '
                    f'title="{escape(element)}: {value:+.4g}"></td>'
                )
        score = f"{escape(output.score)} {float(output.scores[row]):.3f}"
        label = f"{escape(_target_name(output, row))} <small>({score})</small>"
        rows.append(f'<tr class="interpreto-row"><th scope="row">{label}</th>{"".join(cells)}</tr>')
    return (
        '<table class="interpreto-heatmap"><thead><tr><th>continuation &darr; / element &rarr;</th>'
        f"{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _explanation_html(output) -> str:
    meta = f"{escape(output.method)} &middot; {escape(output.task)} &middot; granularity {escape(output.granularity)}"
    if output.task == "generation":
        rows = _heatmap_html(output)
    else:
        rows = "".join(_row_html(output, row) for row in range(output.attributions.shape[0]))
    return (
        f'<div class="interpreto-explanation"><div class="interpreto-meta">{meta}</div>'
        f'<div class="interpreto-meta">input: {escape(output.text)}</div>{rows}</div>'
    )


def _legend() -> str:
    return (
        '<div class="interpreto-legend interpreto-meta">'
        f'<span style="background:{_color(1, 1)}">for the target</span>'
        f'<span style="background:{_color(-1, 1)}">against the target</span>'
        '<span class="interpreto-nan">no influence</span>'
        " color intensity: |attribution| / max |attribution| of the row; hover for values</div>"
    )


def render_fragment(outputs: list[AttributionOutput]) -> str:
    """HTML for notebooks (`_repr_html_`): a style block, the legend and one block per explanation."""
    body = "".join(_explanation_html(output) for output in outputs)
    return f"<style>{_STYLE}</style>{_legend()}{body}"


def to_html(outputs: list[AttributionOutput], title: str = "interpreto attributions") -> str:
    """A standalone HTML page (no script, no external resource) for a list of `AttributionOutput`s."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>"
        f"{render_fragment(outputs)}</body></html>\n"
    )


def save_html(
    outputs: AttributionOutput | list[AttributionOutput],
    path: str | Path,
    title: str = "interpreto attributions",
) -> Path:
    """Writes a standalone HTML page for explanations and returns its path.

    Args:
        outputs: an `AttributionOutput` or a list of them.
        path: the file to write.
        title: the page title.

    Examples:
        >>> import tempfile, torch
        >>> from interpreto import AttributionOutput, save_html
        >>> out = AttributionOutput(text="<b>hi</b>", elements=["<b>hi</b>"], attributions=torch.ones(1, 1),
        ...     targets=[0], target_names=["x"], scores=torch.zeros(1))
        >>> page = save_html(out, tempfile.mkdtemp() + "/page.html").read_text()
        >>> "<b>hi</b>" in page
        False
    """
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_html(list(outputs), title=title), encoding="utf-8")
    return path
