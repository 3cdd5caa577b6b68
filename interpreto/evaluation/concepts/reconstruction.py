"""How well a concept dictionary rebuilds the activations: `MSE` and `ExplainedVariance` (R^2 = 1 - FVU).

Both read `x^ = decode(encode(x))` over every evaluated row (token) and reduce over the whole set at once, in
float64, so their values do not depend on the batch size nor on how the rows are split into shards.
"""

from __future__ import annotations

import math

import torch

from interpreto.concepts.base import ConceptExplainer
from interpreto.concepts.data import ActivationSource
from interpreto.evaluation.concepts.base import (
    DEFAULT_BATCH_SIZE,
    ConceptMetricResult,
    ReconstructionStats,
    check_batch_size,
    reconstruction_batches,
)


class ReconstructionMetric:
    """Base of the metrics computed from activations `x` and their reconstructions `x^`.

    Call `compute(explainer, activations)` to reconstruct with a fitted `ConceptExplainer`
    (`x^ = decode(encode(x))`, streamed in batches: `activations` may be a shard folder), or
    `compute(None, activations, reconstruction=x_hat)` to score two `(rows, hidden)` tensors directly (kept in
    their dtype, so float64 inputs are scored in float64 throughout).

    Args:
        batch_size: rows per batch.
        per_row: keep each row's value in `result.per_row` (`n_rows` floats).
    """

    name = ""
    higher_is_better = False
    covariances = False

    def __init__(self, batch_size: int = DEFAULT_BATCH_SIZE, per_row: bool = True):
        self.batch_size = batch_size
        self.per_row = per_row

    def compute(
        self,
        explainer: ConceptExplainer | None,
        activations: ActivationSource,
        *,
        reconstruction: torch.Tensor | None = None,
    ) -> ConceptMetricResult:
        """The metric over every row of `activations`.

        Args:
            explainer: a fitted concept explainer, or None with `reconstruction`.
            activations: what `ConceptExplainer.fit` accepts (tensor, `Activations`, the dict of
                `get_activations`, a shard folder); a `(rows, hidden)` tensor with `reconstruction`.
            reconstruction: `(rows, hidden)` reconstructed rows, instead of an explainer.

        Returns:
            A `ConceptMetricResult`.
        """
        check_batch_size(self.batch_size)
        stats = ReconstructionStats(covariances=self.covariances, per_row=self.per_row)
        for x, x_hat in reconstruction_batches(explainer, activations, reconstruction, self.batch_size):
            stats.update(x, x_hat)
        return self._result(stats)

    def _result(self, stats: ReconstructionStats) -> ConceptMetricResult:
        raise NotImplementedError


class MSE(ReconstructionMetric):
    """Mean squared reconstruction error per element: `MSE = sum_i ||x_i - x^_i||^2 / (n d)`. Lower is better.

    A mean, so repeating the same errors leaves it unchanged (Interpreto 0.5's "MSE" was the Frobenius norm
    `||X - X^||_F`, which doubles when the data is 4x larger). Also reports, per row, the squared error
    `||x - x^||^2` (`per_row`), and the mean relative error `mean_i ||x_i - x^_i|| / ||x_i||` over rows with
    `x_i != 0` (`details["relative_error"]`).

    Args:
        batch_size: rows per batch.
        per_row: keep each row's squared error.

    Examples:
        >>> import torch
        >>> from interpreto.evaluation import MSE
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> result = MSE().compute(None, x, reconstruction=x + 0.5)
        >>> result.value, result.per_row.tolist(), result.higher_is_better
        (0.25, [0.5, 0.5], False)
    """

    name = "MSE"
    higher_is_better = False

    def _result(self, stats: ReconstructionStats) -> ConceptMetricResult:
        n, d = stats.n, stats.dim
        relative = stats.relative_error / stats.nonzero_rows if stats.nonzero_rows else math.nan
        return ConceptMetricResult(
            self.name,
            stats.squared_error / (n * d),
            self.higher_is_better,
            per_row=stats.per_row(),
            details={
                "sum_squared_error": stats.squared_error,
                "mean_row_squared_error": stats.squared_error / n,
                "relative_error": relative,
                "n_rows": n,
                "dim": d,
            },
        )


class ExplainedVariance(ReconstructionMetric):
    """The fraction of the activations' variance the reconstruction explains (R^2). Higher is better.

    `R^2 = 1 - FVU = 1 - sum_i ||x_i - x^_i||^2 / sum_i ||x_i - mean||^2`, with `mean` the per-dimension mean over
    the whole evaluation set: predicting that mean scores exactly 0, a perfect reconstruction 1, and worse than
    the mean is negative. The total variance is accumulated as centred sums merged batch by batch in float64, so
    it stays exact when the mean is far from zero (SAELens 6.18 measured the variance around zero, so a mean
    predictor scored 0.94; overcomplete's `r2_score` uses one global mean instead of one per dimension).

    Args:
        batch_size: rows per batch.
        per_row: keep each row's squared error `||x_i - x^_i||^2` in `per_row`.

    Examples:
        >>> import torch
        >>> from interpreto.evaluation import ExplainedVariance
        >>> x = torch.tensor([[100.0, 1.0], [102.0, 3.0]])
        >>> mean = x.mean(dim=0).expand_as(x)
        >>> ExplainedVariance().compute(None, x, reconstruction=mean).value
        0.0
        >>> ExplainedVariance().compute(None, x, reconstruction=x).value
        1.0
    """

    name = "ExplainedVariance"
    higher_is_better = True

    def _result(self, stats: ReconstructionStats) -> ConceptMetricResult:
        total = stats.total_variance()
        if total == 0:
            raise ValueError(
                f"ExplainedVariance: the {stats.n} activation rows are all equal (zero variance), so no fraction "
                f"of their variance can be explained: evaluate on more than one distinct row."
            )
        fvu = stats.squared_error / total
        return ConceptMetricResult(
            self.name,
            1.0 - fvu,
            self.higher_is_better,
            per_row=stats.per_row(),
            details={
                "fvu": fvu,
                "sum_squared_error": stats.squared_error,
                "total_variance": total,
                "n_rows": stats.n,
                "dim": stats.dim,
            },
        )
