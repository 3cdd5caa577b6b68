"""How sparse the concept codes are: `L0` (active concepts per row) and `DeadConcepts` (never active ones).

Both encode every evaluated row (token) once and count, over the whole evaluation set, which concepts are
active (`|z| > active_threshold`, by default `z != 0`): counts are never per batch, so a concept that fires once
anywhere is alive (overcomplete 0.3 counted dead codes per batch).
"""

from __future__ import annotations

import math

import torch

from interpreto.concepts.base import ConceptExplainer
from interpreto.concepts.data import ActivationSource
from interpreto.evaluation.concepts.base import (
    DEFAULT_BATCH_SIZE,
    ConceptMetricResult,
    check_batch_size,
    code_batches,
)


class CodeMetric:
    """Base of the metrics computed from concept codes.

    Call `compute(explainer, activations)` to encode the activations with a fitted explainer (streamed in
    batches: `activations` may be a shard folder), or `compute(codes=z)` to measure `(rows, nb_concepts)` codes
    directly.

    Args:
        active_threshold: a code is active when `|z| > active_threshold` (0: any non-zero code).
        batch_size: rows per batch.
        per_row: keep each row's L0 in `result.per_row`.
    """

    name = ""
    higher_is_better = False

    def __init__(
        self, active_threshold: float = 0.0, batch_size: int = DEFAULT_BATCH_SIZE, per_row: bool = True
    ):
        self.active_threshold = active_threshold
        self.batch_size = batch_size
        self.per_row = per_row

    def compute(
        self,
        explainer: ConceptExplainer | None = None,
        activations: ActivationSource | None = None,
        *,
        codes: torch.Tensor | None = None,
    ) -> ConceptMetricResult:
        """The metric over every row.

        Args:
            explainer: a fitted concept explainer, or None with `codes`.
            activations: what `ConceptExplainer.fit` accepts (tensor, `Activations`, dict, shard folder).
            codes: `(rows, nb_concepts)` concept codes, instead of an explainer and activations.

        Returns:
            A `ConceptMetricResult` whose `per_concept` is each concept's density (the fraction of rows where
            it is active).
        """
        check_batch_size(self.batch_size)
        if not self.active_threshold >= 0:
            raise ValueError(f"active_threshold must be >= 0, got {self.active_threshold!r}.")
        n_rows, counts, row_l0 = 0, None, []
        for batch in code_batches(explainer, activations, codes, self.batch_size):
            active = batch.abs() > self.active_threshold
            counts = active.sum(dim=0, dtype=torch.float64) + (0 if counts is None else counts)
            row_l0.append(active.sum(dim=1, dtype=torch.float64).cpu())
            n_rows += batch.shape[0]
        return self._result(n_rows, counts.cpu(), torch.cat(row_l0))

    def _result(self, n_rows: int, counts: torch.Tensor, row_l0: torch.Tensor) -> ConceptMetricResult:
        raise NotImplementedError


class L0(CodeMetric):
    """The mean number of active concepts per row: `L0 = mean_i #{k : |z_ik| > t}`. Lower is sparser.

    A count, not a fraction: a TopK SAE's codes have `L0 = k` (Interpreto 0.5's "Sparsity" was `L0 / c` and its
    "SparsityRatio" `L0 / c^2`). `per_row` holds each row's count, `per_concept` each concept's density
    `p_k = #{i : |z_ik| > t} / n`; `details` has the standard deviation of the counts and `L0 / nb_concepts`.
    Whether fewer is better depends on the reconstruction it buys: read it with `ExplainedVariance`.

    Args:
        active_threshold: a code is active when `|z| > active_threshold`.
        batch_size: rows per batch.
        per_row: keep each row's count.

    Examples:
        >>> import torch
        >>> from interpreto.evaluation import L0
        >>> codes = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
        >>> result = L0().compute(codes=codes)
        >>> result.value, result.per_row.tolist(), result.per_concept.tolist()
        (1.5, [2.0, 1.0], [0.5, 0.5, 0.5])
    """

    name = "L0"
    higher_is_better = False

    def _result(self, n_rows: int, counts: torch.Tensor, row_l0: torch.Tensor) -> ConceptMetricResult:
        mean = float(row_l0.mean())
        return ConceptMetricResult(
            self.name,
            mean,
            self.higher_is_better,
            per_row=row_l0 if self.per_row else None,
            per_concept=counts / n_rows,
            details={
                "std": float(row_l0.std()) if n_rows > 1 else 0.0,
                "fraction_of_concepts": mean / counts.numel(),
                "nb_concepts": counts.numel(),
                "n_rows": n_rows,
                "active_threshold": self.active_threshold,
            },
        )


class DeadConcepts(CodeMetric):
    """The number of concepts never active on the whole evaluation set. Lower is better.

    `dead = #{k : p_k = 0}` with the density `p_k = #{i : |z_ik| > t} / n` over all `n` evaluated rows (in
    `per_concept`). `details` also reports the dead fraction and indices, the *dense* concepts, active on more
    than `dense_threshold` of the rows (default 0.1, i.e. 10% of the tokens: far above the density of a
    specific feature, such concepts usually encode position or norm rather than meaning), and a histogram of
    `log10 p_k` over the alive concepts (`density_histogram`).

    Args:
        dense_threshold: a concept active on more than this fraction of the rows is dense.
        n_bins: bins of the log-density histogram.
        active_threshold: a code is active when `|z| > active_threshold`.
        batch_size: rows per batch.
        per_row: keep each row's L0 in `per_row`.

    Examples:
        >>> import torch
        >>> from interpreto.evaluation import DeadConcepts
        >>> codes = torch.tensor([[0.0, 2.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
        >>> result = DeadConcepts(dense_threshold=0.9).compute(codes=codes)
        >>> result.value, result.details["dead_indices"], result.details["dense_indices"]
        (2.0, [0, 3], [1])
    """

    name = "DeadConcepts"
    higher_is_better = False

    def __init__(
        self,
        dense_threshold: float = 0.1,
        n_bins: int = 20,
        active_threshold: float = 0.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        per_row: bool = True,
    ):
        super().__init__(active_threshold=active_threshold, batch_size=batch_size, per_row=per_row)
        self.dense_threshold = dense_threshold
        self.n_bins = n_bins

    def _result(self, n_rows: int, counts: torch.Tensor, row_l0: torch.Tensor) -> ConceptMetricResult:
        if not 0 <= self.dense_threshold <= 1:
            raise ValueError(f"dense_threshold must be a fraction in [0, 1], got {self.dense_threshold!r}.")
        density = counts / n_rows
        dead = torch.nonzero(counts == 0).flatten().tolist()
        dense = torch.nonzero(density > self.dense_threshold).flatten().tolist()
        return ConceptMetricResult(
            self.name,
            float(len(dead)),
            self.higher_is_better,
            per_row=row_l0 if self.per_row else None,
            per_concept=density,
            details={
                "dead_fraction": len(dead) / counts.numel(),
                "dead_indices": dead,
                "n_dense": len(dense),
                "dense_indices": dense,
                "dense_threshold": self.dense_threshold,
                "density_histogram": density_histogram(density, n_rows, self.n_bins),
                "nb_concepts": counts.numel(),
                "n_rows": n_rows,
            },
        )


def density_histogram(density: torch.Tensor, n_rows: int, n_bins: int = 20) -> dict:
    """A histogram of `log10(density)` over the alive concepts, from `log10(1 / n_rows)` (active once) to 0.

    Args:
        density: `(nb_concepts,)` each concept's fraction of active rows.
        n_rows: the number of rows the densities were measured on.
        n_bins: the number of equal-width bins.

    Returns:
        `{"log10_edges": n_bins + 1 floats, "counts": n_bins ints, "dead": concepts of density 0}`.

    Examples:
        >>> import torch
        >>> density_histogram(torch.tensor([0.0, 0.01, 1.0]), n_rows=100, n_bins=2)
        {'log10_edges': [-2.0, -1.0, 0.0], 'counts': [1, 1], 'dead': 1}
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    low = -math.log10(n_rows) if n_rows > 1 else -1.0
    edges = torch.linspace(low, 0.0, n_bins + 1, dtype=torch.float64)
    alive = density[density > 0].double().log10().clamp(low, 0.0)
    counts = torch.histc(alive, bins=n_bins, min=low, max=0.0) if alive.numel() else torch.zeros(n_bins)
    return {
        "log10_edges": [round(float(edge), 12) for edge in edges],
        "counts": [int(count) for count in counts],
        "dead": int((density == 0).sum()),
    }
