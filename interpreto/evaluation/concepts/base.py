"""The shared parts of the concept metrics: their result, and one-pass float64 accumulators over batches.

Every metric streams its rows: `ActivationData(...).batches(batch_size, shuffle=False)` reads a shard folder one
shard at a time, so an evaluation set larger than memory works. Sums are kept in float64, and means and
(co)variances are merged batch by batch with Chan et al.'s update (centred sums, not `sum x^2 - n mean^2`, which
cancels catastrophically when the mean is far from zero).

Chan, Golub & LeVeque 1979, "Updating formulae and a pairwise algorithm for computing sample variances".
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from interpreto.concepts.base import ConceptExplainer
from interpreto.concepts.data import ActivationData, ActivationSource

DEFAULT_BATCH_SIZE = 4096


@dataclass
class ConceptMetricResult:
    """One concept metric over an evaluation set.

    Attributes:
        name: the metric's name (`"MSE"`, `"ExplainedVariance"`, ...).
        value: the metric's value.
        higher_is_better: True when a larger value means a better dictionary.
        per_row: `(n_rows,)` a value per evaluated row (token), e.g. its squared error or L0; None when the metric
            has none (or `per_row=False` was asked).
        per_concept: `(nb_concepts,)` a value per concept, e.g. its density; None when the metric has none.
        details: the other numbers the metric measured (JSON-ready: numbers, strings, lists of numbers).

    Examples:
        >>> import torch
        >>> from interpreto.evaluation import ConceptMetricResult
        >>> result = ConceptMetricResult("L0", 2.0, False, per_row=torch.tensor([1.0, 3.0]))
        >>> result.to_dict()["per_row"], float(result)
        ([1.0, 3.0], 2.0)
    """

    name: str
    value: float
    higher_is_better: bool
    per_row: torch.Tensor | None = None
    per_concept: torch.Tensor | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        return {
            "name": self.name,
            "value": _number(self.value),
            "higher_is_better": self.higher_is_better,
            "per_row": None if self.per_row is None else _floats(self.per_row),
            "per_concept": None if self.per_concept is None else _floats(self.per_concept),
            "details": {key: _jsonable(value) for key, value in self.details.items()},
        }


class Moments:
    """Count, mean and centred second moments of rows seen batch by batch, in float64.

    Args:
        full: keep the full `(dim, dim)` centred cross-product (for covariances) instead of its diagonal.
    """

    def __init__(self, full: bool = False):
        self.full = full
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None  # sum of centred squares (diagonal) or cross-products (full)

    def update(self, rows: torch.Tensor) -> None:
        """Merges a batch `(rows, dim)` into the moments (Chan et al.'s pairwise update)."""
        rows = rows.double()
        n_batch = rows.shape[0]
        if n_batch == 0:
            return
        batch_mean = rows.mean(dim=0)
        centred = rows - batch_mean
        batch_m2 = centred.T @ centred if self.full else (centred * centred).sum(dim=0)
        if self.mean is None:
            self.n, self.mean, self.m2 = n_batch, batch_mean, batch_m2
            return
        total = self.n + n_batch
        delta = batch_mean - self.mean
        weight = self.n * n_batch / total
        self.m2 = self.m2 + batch_m2 + (torch.outer(delta, delta) if self.full else delta * delta) * weight
        self.mean = self.mean + delta * (n_batch / total)
        self.n = total

    def covariance(self) -> torch.Tensor:
        """The unbiased covariance `m2 / (n - 1)` (full or its diagonal)."""
        return self.m2 / (self.n - 1)


class ReconstructionStats:
    """Everything the reconstruction metrics need, accumulated in one pass over `(x, x^)` batches.

    Args:
        covariances: also keep the full covariances of `x` and `x^` (for `FrechetDistance`; `dim^2` floats each).
        per_row: keep each row's squared error `||x - x^||^2`.
    """

    def __init__(self, covariances: bool = False, per_row: bool = True):
        self.x = Moments(full=covariances)
        self.x_hat = Moments(full=True) if covariances else None
        self.squared_error = 0.0  # sum over rows of ||x - x^||^2
        self.relative_error = 0.0  # sum over rows with x != 0 of ||x - x^|| / ||x||
        self.nonzero_rows = 0
        self.dim: int | None = None
        self.row_errors: list[torch.Tensor] | None = [] if per_row else None

    def update(self, x: torch.Tensor, x_hat: torch.Tensor) -> None:
        """Adds a batch of rows `x` and their reconstructions `x^`, both `(rows, dim)`."""
        if x.shape != x_hat.shape or x.dim() != 2:
            raise ValueError(
                f"the reconstruction has shape {tuple(x_hat.shape)} but the activations {tuple(x.shape)}: "
                f"both must be the same (rows, hidden)."
            )
        if self.dim is not None and x.shape[1] != self.dim:
            raise ValueError(f"batches of {x.shape[1]} and {self.dim} features: pass one split point's rows.")
        self.dim = x.shape[1]
        x, x_hat = x.detach().double().cpu(), x_hat.detach().double().cpu()
        errors = ((x - x_hat) ** 2).sum(dim=1)
        norms = x.norm(dim=1)
        nonzero = norms > 0
        self.squared_error += float(errors.sum())
        self.relative_error += float((errors[nonzero].sqrt() / norms[nonzero]).sum())
        self.nonzero_rows += int(nonzero.sum())
        self.x.update(x)
        if self.x_hat is not None:
            self.x_hat.update(x_hat)
        if self.row_errors is not None:
            self.row_errors.append(errors)

    @property
    def n(self) -> int:
        """Rows seen."""
        return self.x.n

    def per_row(self) -> torch.Tensor | None:
        """`(n,)` each row's squared error, float64, or None when not kept."""
        return None if self.row_errors is None else torch.cat(self.row_errors)

    def total_variance(self) -> float:
        """`sum_rows ||x - mean||^2`, the mean per dimension over every row seen."""
        m2 = self.x.m2.diagonal() if self.x.full else self.x.m2
        return float(m2.sum())


def reconstruction_batches(
    explainer: ConceptExplainer | None,
    activations: ActivationSource,
    reconstruction: torch.Tensor | None,
    batch_size: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`(x, x^)` batches: `x^ = decode(encode(x))` with an explainer, else the rows of `reconstruction`."""
    check_batch_size(batch_size)
    if explainer is not None:
        if reconstruction is not None:
            raise ValueError("pass either an explainer or reconstruction=, not both.")
        for rows in explainer.activation_data(activations).batches(batch_size, shuffle=False):
            yield rows, explainer.decode(explainer.encode(rows))
        return
    if reconstruction is None:
        raise ValueError("pass an explainer (to reconstruct the activations) or reconstruction=.")
    rows = activations.activations if hasattr(activations, "activations") else activations
    if not isinstance(rows, torch.Tensor) or not isinstance(reconstruction, torch.Tensor):
        raise TypeError(
            "with reconstruction=, activations and reconstruction must be (rows, hidden) tensors."
        )
    if rows.shape != reconstruction.shape or rows.dim() != 2:
        raise ValueError(
            f"reconstruction has shape {tuple(reconstruction.shape)} but activations {tuple(rows.shape)}: "
            f"both must be the same (rows, hidden)."
        )
    for start in range(0, rows.shape[0], batch_size):  # kept in their dtype (float64 stays float64)
        yield rows[start : start + batch_size], reconstruction[start : start + batch_size]


def code_batches(
    explainer: ConceptExplainer | None,
    activations: ActivationSource | None,
    codes: torch.Tensor | None,
    batch_size: int,
) -> Iterator[torch.Tensor]:
    """Concept code batches `(rows, nb_concepts)`: `encode(x)` with an explainer, else the rows of `codes`."""
    check_batch_size(batch_size)
    if explainer is not None:
        if codes is not None:
            raise ValueError("pass either an explainer and activations or codes=, not both.")
        if activations is None:
            raise ValueError("pass the activations to encode.")
        for rows in explainer.activation_data(activations).batches(batch_size, shuffle=False):
            yield explainer.encode(rows)
        return
    if codes is None:
        raise ValueError("pass an explainer and activations (to encode), or codes=.")
    if activations is not None:
        raise ValueError("with codes=, pass no activations (the codes are what is measured).")
    yield from ActivationData(codes).batches(batch_size, shuffle=False)


def check_batch_size(batch_size: int) -> None:
    """Raises a `ValueError` naming `batch_size` unless it is a positive integer."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")


def _number(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _floats(values: torch.Tensor) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.detach().double().cpu().flatten().tolist()]


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _floats(value) if value.dim() else _number(float(value))
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return _number(value)
