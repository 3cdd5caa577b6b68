"""Several attribution methods run over one dataset and scored by several metrics: a table for papers."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from interpreto.attribution.base import AttributionExplainer
from interpreto.attribution.gradient import GradientExplainer
from interpreto.evaluation.base import AttributionMetric
from interpreto.evaluation.infidelity import Infidelity
from interpreto.evaluation.results import MetricResult
from interpreto.evaluation.sensitivity import Sensitivity
from interpreto.model.sample import Inputs, Model, Targets, Tokenizer

RANDOM_ROW = "random order"


@dataclass
class ComparisonTable:
    """One row per method (and a random-order reference row): each metric's mean and 95% confidence
    half-width, and the time per explanation.

    Attributes:
        methods: row names.
        metrics: metric names; a name ends with an arrow saying which direction is better.
        means: `means[metric][row]`, NaN where a metric does not apply (Sensitivity for perturbation methods).
        ci95: `ci95[metric][row]`, half-width of the normal 95% interval over inputs.
        seconds_per_explanation: per row (NaN for the random reference).
        results: the `MetricResult`s, `results[row][metric]`, with per-input values and curves.
    """

    methods: list[str]
    metrics: list[str]
    means: dict[str, list[float]]
    ci95: dict[str, list[float]]
    seconds_per_explanation: list[float]
    results: dict[str, dict[str, MetricResult]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, list]:
        """Columns as a dict of lists: `method`, then `<metric>` and `<metric> ci95` per metric, then
        `seconds per explanation`."""
        table: dict[str, list] = {"method": list(self.methods)}
        for metric in self.metrics:
            table[metric] = list(self.means[metric])
            table[f"{metric} ci95"] = list(self.ci95[metric])
        table["seconds per explanation"] = list(self.seconds_per_explanation)
        return table

    def to_pandas(self):
        """The table as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame(self.to_dict())

    def to_markdown(self, digits: int = 3) -> str:
        """A Markdown table, each metric as `mean ± ci95`."""
        header = ["method", *self.metrics, "s / explanation"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row, method in enumerate(self.methods):
            cells = [method]
            for metric in self.metrics:
                mean, half = self.means[metric][row], self.ci95[metric][row]
                cells.append("n/a" if math.isnan(mean) else f"{mean:.{digits}f} ± {half:.{digits}f}")
            seconds = self.seconds_per_explanation[row]
            cells.append("" if math.isnan(seconds) else f"{seconds:.3f}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_markdown()


def compare(
    methods: Sequence | Mapping[str, object],
    model: Model,
    tokenizer: Tokenizer,
    texts: Inputs,
    metrics: Sequence,
    targets: Targets = None,
    random_baseline: bool = True,
    seed: int = 0,
) -> ComparisonTable:
    """Explains `texts` with each method and scores the explanations with each metric.

    Args:
        methods: attribution methods: classes (built as `Method(model, tokenizer, progress=False)`) or instances,
            in a list or a dict naming them.
        model: the explained classifier or causal LM.
        tokenizer: its fast tokenizer.
        texts: the inputs (texts, or prompts for generation).
        metrics: metric classes (built as `Metric(model, tokenizer, progress=False)`) or instances: `Deletion`,
            `Insertion`, `Comprehensiveness`, `Sufficiency`, `AOPC`, `Infidelity`, `Sensitivity` (gradient
            methods only; n/a for the others).
        targets: the explained targets, as the methods take them (None: predicted class / generated text).
        random_baseline: add a row with the metrics under a random element order (on the first method's
            explanations), the reference a faithful method must beat. Infidelity and Sensitivity have none.
        seed: seeds the random order and the metrics' draws.

    Returns:
        A `ComparisonTable`.

    Examples:
        >>> from interpreto import Occlusion, Saliency
        >>> from interpreto.evaluation import Deletion, Insertion, compare
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> table = compare([Occlusion, Saliency], model, tokenizer, ["a fine film", "dull and long"],
        ...                 [Deletion, Insertion])
        >>> table.methods
        ['Occlusion', 'Saliency', 'random order']
        >>> print(table.to_markdown().splitlines()[0])
        | method | Deletion AUC ↓ | Insertion AUC ↑ | s / explanation |
    """
    named = _named_methods(methods, model, tokenizer)
    metric_objects = [_build(metric, model, tokenizer) for metric in metrics]
    names = [_column(metric) for metric in metric_objects]
    rows, seconds, results = [], [], {}
    first_explanations = None
    for name, explainer in named.items():
        start = time.perf_counter()
        explanations = explainer(texts, targets)
        seconds.append((time.perf_counter() - start) / len(explanations))
        first_explanations = first_explanations or explanations
        results[name] = {
            column: result
            for column, metric in zip(names, metric_objects, strict=True)
            if (result := _evaluate(metric, explanations, explainer, seed)) is not None
        }
        rows.append(name)
    if random_baseline and first_explanations is not None:
        results[RANDOM_ROW] = {
            column: metric.evaluate(first_explanations, order="random", seed=seed)
            for column, metric in zip(names, metric_objects, strict=True)
            if not isinstance(metric, (Infidelity, Sensitivity))
        }
        rows.append(RANDOM_ROW)
        seconds.append(math.nan)
    means = {column: [_get(results[row], column, "value") for row in rows] for column in names}
    ci95 = {column: [_get(results[row], column, "ci95") for row in rows] for column in names}
    return ComparisonTable(rows, names, means, ci95, seconds, results)


def _named_methods(methods, model, tokenizer) -> dict[str, AttributionExplainer]:
    items = methods.items() if isinstance(methods, Mapping) else [(None, method) for method in methods]
    named = {}
    for name, method in items:
        explainer = method(model, tokenizer, progress=False) if isinstance(method, type) else method
        if not isinstance(explainer, AttributionExplainer):
            raise TypeError(
                f"methods: {method!r} is not an attribution method (a class such as Occlusion or an instance)."
            )
        named[name or type(explainer).__name__] = explainer
    if not named:
        raise ValueError("methods is empty: pass attribution methods, e.g. [Occlusion, IntegratedGradients].")
    return named


def _build(metric, model, tokenizer) -> AttributionMetric:
    built = metric(model, tokenizer, progress=False) if isinstance(metric, type) else metric
    if not isinstance(built, AttributionMetric):
        raise TypeError(f"metrics: {metric!r} is not a metric (a class such as Deletion or an instance).")
    return built


def _column(metric: AttributionMetric) -> str:
    arrow = "↑" if metric.higher_is_better else "↓"
    suffix = " AUC" if metric.name in ("Deletion", "Insertion") else ""
    return f"{metric.name}{suffix} {arrow}"


def _evaluate(metric, explanations, explainer, seed: int) -> MetricResult | None:
    if isinstance(metric, Sensitivity):
        if not isinstance(explainer, GradientExplainer):
            return None
        return metric.evaluate(explanations, explainer, seed=seed)
    return metric.evaluate(explanations, seed=seed)


def _get(results: dict[str, MetricResult], column: str, attribute: str) -> float:
    return getattr(results[column], attribute) if column in results else math.nan
