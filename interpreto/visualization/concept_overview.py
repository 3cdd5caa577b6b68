"""An overview of many concepts: one table row per concept with its label, density, max activation, label
scores and top 3 examples highlighted inline (same colours and escaping as `concept_page`)."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

from interpreto.visualization.concept_page import (
    ConceptStats,
    _check_examples,
    _legend,
    _num,
    _Rendered,
    _score_value,
    concept_stats,
    tokens_html,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from interpreto.concepts.interpret import ConceptCodes, ConceptExample

N_EXAMPLES = 3
_BUILTIN_SORTS = ("index", "density", "max_activation")


class ConceptRow:
    """One concept of an overview: index, label, stats, scores (name -> value) and its first examples."""

    def __init__(
        self, concept: int, label: str | None, stats: ConceptStats, scores: dict[str, float], examples
    ):
        self.concept, self.label, self.stats, self.scores, self.examples = (
            concept,
            label,
            stats,
            scores,
            examples,
        )


class ConceptOverview(_Rendered):
    """A table of concepts: build it with `concept_overview`."""

    def __init__(self, rows: list[ConceptRow], score_names: list[str], title: str = "interpreto concepts"):
        self.rows, self.score_names, self.title = rows, score_names, title

    def _body(self) -> str:
        head = "".join(f"<th>{escape(name)}</th>" for name in self.score_names)
        body = []
        for row in self.rows:
            scores = "".join(
                f'<td class="interpreto-num">{_num(row.scores.get(name, math.nan))}</td>'
                for name in self.score_names
            )
            examples = "".join(
                f'<div class="interpreto-example"><span class="interpreto-value">{_num(example.activation)}'
                f"</span>{tokens_html(example, row.stats.scale)}</div>"
                for example in row.examples
            )
            body.append(
                f'<tr data-concept="{row.concept}"><td class="interpreto-num">{row.concept}</td>'
                f"<td>{escape(row.label or '')}</td>"
                f'<td class="interpreto-num interpreto-density" data-value="{row.stats.density!r}">'
                f"{100 * row.stats.density:.3g}%</td>"
                f'<td class="interpreto-num interpreto-max" data-value="{row.stats.max_activation!r}">'
                f"{_num(row.stats.max_activation)}</td>{scores}<td>{examples}</td></tr>"
            )
        return (
            f'<div class="interpreto-concept"><h2>{escape(self.title)}</h2>'
            '<table class="interpreto-table interpreto-overview interpreto-examples"><thead><tr>'
            f"<th>concept</th><th>label</th><th>density</th><th>max activation</th>{head}"
            f"<th>top {N_EXAMPLES} examples</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"{_legend()}</div>"
        )

    def figure(self) -> Figure:
        from interpreto.visualization.concept_figures import overview_figure

        return overview_figure(self)


def _normalized_scores(scores: Any) -> dict[int, dict[str, float]]:
    """concept -> score name -> value, from any of the accepted layouts (see `concept_overview`)."""
    result: dict[int, dict[str, float]] = {}
    for key, value in (scores or {}).items():
        if isinstance(key, str):  # score name -> concept -> value
            for concept, score in value.items():
                result.setdefault(int(concept), {})[key] = _score_value(score)
        elif isinstance(value, dict):  # concept -> score name -> value
            result.setdefault(int(key), {}).update({str(n): _score_value(s) for n, s in value.items()})
        elif hasattr(value, "method"):  # concept -> LabelScore (one scorer's output)
            result.setdefault(int(key), {})[str(value.method)] = _score_value(value)
        else:
            raise ValueError(
                f"scores: cannot read the entry {key!r}: {value!r}; pass {{concept: {{score name: value}}}}, "
                "{score name: {concept: value}} or one scorer's {concept: LabelScore}."
            )
    return result


def _sort_key(sort_by: str, score_names: list[str]):
    if sort_by == "index":
        return lambda row: row.concept
    if sort_by in ("density", "max_activation"):
        return lambda row: (-getattr(row.stats, sort_by), row.concept)
    if sort_by in score_names:

        def by_score(row):
            value = row.scores.get(sort_by, math.nan)
            return (math.isnan(value), -value if not math.isnan(value) else 0.0, row.concept)

        return by_score
    raise ValueError(
        f"sort_by={sort_by!r}: use one of {list(_BUILTIN_SORTS)} or a score name ({score_names or 'none given'})."
    )


def concept_overview(
    codes: ConceptCodes,
    examples_by_concept: dict[int, list[ConceptExample]],
    labels: dict[int, str] | None = None,
    scores: dict | None = None,
    sort_by: str = "index",
    bins: int = 30,
    title: str = "interpreto concepts",
) -> ConceptOverview:
    """A table of the concepts of `examples_by_concept`: one row each with index, label, density, max
    activation, label scores and the top 3 examples highlighted inline.

    Args:
        codes: per-token activations of a dataset (`ConceptCodes.compute(explainer, texts)`).
        examples_by_concept: concept -> its examples, best first (`TopKInputs(...).interpret(...)`); its keys
            are the concepts shown.
        labels: concept -> label.
        scores: label scores as `{concept: {score name: value}}`, `{score name: {concept: value}}` or one
            scorer's output `{concept: LabelScore}` (named by its `method`); values may be `LabelScore`s.
        sort_by: `"index"` (ascending), `"density"`, `"max_activation"` or a score name (descending, concepts
            without that score last).
        bins: histogram bins of the per-concept stats (not drawn here, kept for `ConceptStats`).
        title: the page title.

    Returns:
        A `ConceptOverview` with `.html()`, `.save(path)`, `.figure()`, `.save_png(path)` and a notebook display.

    Raises:
        ValueError: a concept is not an index of `codes`, an example belongs to another concept, `scores`
            has an unknown layout or `sort_by` is not one of the choices.

    Examples:
        >>> import torch
        >>> from interpreto.concepts.interpret import ConceptCodes
        >>> codes = ConceptCodes(texts=["a b"], tokens=[["a", " b"]],
        ...     codes=[torch.tensor([[1.0, 0.0], [0.0, 3.0]])], scored=[torch.tensor([True, True])])
        >>> examples = {1: [codes.example(1, 0, 1)], 0: [codes.example(0, 0, 0)]}
        >>> table = concept_overview(codes, examples, labels={0: "a", 1: "b"}, scores={"fuzzing": {0: 0.2, 1: 0.9}})
        >>> [row.concept for row in table.rows], [row.concept for row in concept_overview(
        ...     codes, examples, scores={"fuzzing": {0: 0.2, 1: 0.9}}, sort_by="fuzzing").rows]
        ([0, 1], [1, 0])
    """
    labels = labels or {}
    per_concept = _normalized_scores(scores)
    score_names = sorted({name for values in per_concept.values() for name in values})
    key = _sort_key(sort_by, score_names)
    nb_concepts = codes.nb_concepts
    rows = []
    for concept in sorted(examples_by_concept):
        if isinstance(concept, bool) or not isinstance(concept, int) or not 0 <= concept < nb_concepts:
            raise ValueError(
                f"examples_by_concept: key {concept!r} is not a concept index of codes: use integers in "
                f"[0, {nb_concepts})."
            )
        examples = _check_examples(examples_by_concept[concept], concept, f"examples_by_concept[{concept}]")
        examples = sorted(examples, key=lambda example: -example.activation)[:N_EXAMPLES]
        stats = concept_stats(codes, concept, bins=bins)
        rows.append(ConceptRow(concept, labels.get(concept), stats, per_concept.get(concept, {}), examples))
    return ConceptOverview(sorted(rows, key=key), score_names, title=title)
