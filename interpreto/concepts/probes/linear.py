"""Probes: linear read-outs of labelled properties from a split point's activations (Alain & Bengio, 2016).

A probe is fitted on activations `a (n, d)` and labels `y (n,)` and gives one direction per concept: a score
`s_k(a) = a . w_k + b_k` (a logit, a margin, a projection or a regression output). With `standardize=True`
(the default) the solver sees `a~ = (a - mu) / sigma` (training mean and standard deviation per feature, as
scikit-learn's `StandardScaler`), and the weights it finds are mapped back to raw activation space:
`w = w~ / sigma`, `b = b~ - (mu / sigma) . w~`, so that `s(a) = a . w + b` on raw activations.

Probes are fitted to convergence (scikit-learn solvers with tight tolerances, closed forms where there is one),
not for a fixed number of optimiser steps as Interpreto 0.5's 20 Adam steps. The classes here hold
hyper-parameters only (stored as given, as scikit-learn estimators); `fit_probe` runs
them and returns a `FittedProbe` (the back-mapped tensors). `ProbeExplainer` wraps that as concepts.

Reference: G. Alain and Y. Bengio, "Understanding intermediate layers using linear classifier probes", 2016.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


class Probe:
    """Base of probes: hyper-parameters as attributes, `to_config()` to save them, `_solve` to fit.

    Subclasses set `name` (the key `make_probe` knows them by) and `task` (`"classification"` or
    `"regression"`), and implement `_solve(x, y, n_classes, seed) -> (weight (k, d), bias (k,))` on the
    (standardised) float64 features.
    """

    name = ""
    task = "classification"
    # the score adds -||a~||^2 / 2 (centroid probes: scores are minus half the squared distance)
    quadratic = False
    # binary problems get one direction (for the second class) instead of one per class
    binary_single = True

    def __init__(self, standardize: bool = True):
        self.standardize = standardize

    def to_config(self) -> dict[str, Any]:
        """`{"name": ..., **hyper-parameters}`, JSON-serialisable; `make_probe` reads it back."""
        names = [name for name in inspect.signature(type(self).__init__).parameters if name != "self"]
        return {"name": self.name, **{name: getattr(self, name) for name in names}}

    def n_concepts(self, n_classes: int) -> int:
        """How many directions a problem with `n_classes` classes (targets, for regression) gets."""
        if self.task == "classification" and n_classes == 2 and self.binary_single:
            return 1
        return n_classes

    def _solve(
        self, x: np.ndarray, y: np.ndarray, n_classes: int, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.to_config().items() if k != "name")
        return f"{type(self).__name__}({params})"


class LogisticRegressionProbe(Probe):
    """Logistic regression (scikit-learn's L2 `LogisticRegression`, lbfgs): `s(a) = a . w + b` is a logit.

    Binary labels give one direction (the log-odds of the second class, in sorted label order); more classes
    give the multinomial model's one logit per class. Fitted to convergence: a `ConvergenceWarning` naming
    `max_iter` is raised when lbfgs stops early.

    Args:
        C: inverse L2 regularisation strength.
        max_iter: the most lbfgs iterations.
        tol: the solver's stopping tolerance.
        standardize: fit on standardised features (weights are reported in raw activation space).

    Examples:
        >>> import torch
        >>> from interpreto.concepts import LogisticRegressionProbe, ProbeExplainer
        >>> acts = torch.tensor([[0.0, 1.0], [0.0, 2.0], [3.0, 1.0], [4.0, 2.0]])
        >>> probe = LogisticRegressionProbe(C=10.0)
        >>> ProbeExplainer(None, probe).fit(acts, ["no", "no", "yes", "yes"]).predict(acts), probe.to_config()["C"]
        (['no', 'no', 'yes', 'yes'], 10.0)
    """

    name = "logistic_regression"

    def __init__(self, C: float = 1.0, max_iter: int = 10_000, tol: float = 1e-6, standardize: bool = True):
        super().__init__(standardize)
        self.C, self.max_iter, self.tol = C, max_iter, tol

    def _solve(self, x, y, n_classes, seed):
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=self.tol, random_state=seed)
        _fit_converged(model, x, y, self)
        return model.coef_, model.intercept_


class LinearSVMProbe(Probe):
    """Linear SVM (scikit-learn's `LinearSVC`, squared hinge, one-vs-rest): `s(a) = a . w + b` is a margin.

    Args:
        C: inverse L2 regularisation strength.
        max_iter: the most liblinear iterations.
        tol: the solver's stopping tolerance.
        standardize: fit on standardised features.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import LinearSVMProbe, ProbeExplainer
        >>> acts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [1.0, 4.0], [5.0, 0.0], [6.0, 1.0]])
        >>> svm = ProbeExplainer(None, LinearSVMProbe()).fit(acts, [0, 0, 1, 1, 2, 2])
        >>> svm.nb_concepts, svm.predict(acts)
        (3, [0, 0, 1, 1, 2, 2])
    """

    name = "linear_svm"

    def __init__(self, C: float = 1.0, max_iter: int = 100_000, tol: float = 1e-5, standardize: bool = True):
        super().__init__(standardize)
        self.C, self.max_iter, self.tol = C, max_iter, tol

    def _solve(self, x, y, n_classes, seed):
        from sklearn.svm import LinearSVC

        model = LinearSVC(C=self.C, max_iter=self.max_iter, tol=self.tol, random_state=seed)
        _fit_converged(model, x, y, self)
        return model.coef_, model.intercept_


class LinearRegressionProbe(Probe):
    """Ridge regression (scikit-learn's `Ridge`) of continuous labels: `s(a) = a . w + b` predicts `y`.

    Labels `(n,)` give one direction, `(n, t)` one per target. Closed form (no iterations).

    Args:
        alpha: L2 regularisation strength.
        standardize: fit on standardised features.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import LinearRegressionProbe, ProbeExplainer
        >>> acts = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
        >>> ridge = ProbeExplainer(None, LinearRegressionProbe(alpha=1e-6)).fit(acts, 2 * acts[:, 0] + 1)
        >>> [round(v, 3) for v in ridge.predict(acts).tolist()], ridge.concept_names
        ([1.0, 3.0, 5.0, 7.0], ['target'])
    """

    name = "linear_regression"
    task = "regression"

    def __init__(self, alpha: float = 1.0, standardize: bool = True):
        super().__init__(standardize)
        self.alpha = alpha

    def _solve(self, x, y, n_classes, seed):
        from sklearn.linear_model import Ridge

        model = Ridge(alpha=self.alpha, random_state=seed).fit(x, y)
        return np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)


class MeansDiffProbe(Probe):
    """Difference of class means: `w_c = unit(mean(a~ | c) - mean(a~ | not c))`, threshold at the midpoint.

    `s_c(a) = (a~ - (mean(a~ | c) + mean(a~ | not c)) / 2) . w_c`: the signed distance (in the fitting space)
    from the midpoint of the two means along their difference. Binary labels give one direction (second
    class minus first). Closed form, no randomness.

    Args:
        standardize: compute the means on standardised features.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import MeansDiffProbe, ProbeExplainer
        >>> acts = torch.tensor([[0.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 2.0]])
        >>> diff = ProbeExplainer(None, MeansDiffProbe(standardize=False)).fit(acts, [0, 0, 1, 1])
        >>> diff.dictionary.tolist(), diff.encode(torch.tensor([[1.0, 5.0], [3.0, 0.0]])).tolist()
        ([[1.0, 0.0]], [[0.0], [2.0]])
    """

    name = "means_diff"

    def _solve(self, x, y, n_classes, seed):
        classes = [1] if n_classes == 2 else range(n_classes)
        weights, biases = [], []
        for c in classes:
            inside, outside = x[y == c].mean(axis=0), x[y != c].mean(axis=0)
            diff = inside - outside
            w = diff / max(np.linalg.norm(diff), np.finfo(float).tiny)
            weights.append(w)
            biases.append(-w @ (inside + outside) / 2)
        return np.stack(weights), np.array(biases)


class CentroidProbe(Probe):
    """Nearest class centroid: `s_c(a) = -||a~ - m_c||^2 / 2`, `m_c = mean(a~ | c)`, one concept per class.

    The score is minus half the squared (standardised) distance to each class centroid; its class-dependent
    part is linear, `a~ . m_c - ||m_c||^2 / 2`, and that part's weight (mapped back to raw space) is the
    concept's direction. Predictions are the nearest centroid. Closed form.

    Args:
        standardize: measure distances on standardised features.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import CentroidProbe, ProbeExplainer
        >>> acts = torch.tensor([[0.0, 0.0], [0.0, 2.0], [4.0, 0.0], [4.0, 2.0]])
        >>> nearest = ProbeExplainer(None, CentroidProbe(standardize=False)).fit(acts, ["a", "a", "b", "b"])
        >>> nearest.encode(torch.tensor([[1.0, 1.0]])).tolist(), nearest.concept_names
        ([[-0.5, -4.5]], ['a', 'b'])
    """

    name = "centroid"
    quadratic = True
    binary_single = False

    def _solve(self, x, y, n_classes, seed):
        centroids = np.stack([x[y == c].mean(axis=0) for c in range(n_classes)])
        return centroids, -0.5 * (centroids**2).sum(axis=1)


PROBES: dict[str, type[Probe]] = {
    cls.name: cls
    for cls in (LogisticRegressionProbe, LinearSVMProbe, LinearRegressionProbe, MeansDiffProbe, CentroidProbe)
}


def make_probe(probe: Probe | str | dict) -> Probe:
    """A `Probe` from itself, its name (default hyper-parameters) or its `to_config()` dict."""
    if isinstance(probe, Probe):
        return probe
    config = {"name": probe} if isinstance(probe, str) else dict(probe) if isinstance(probe, dict) else None
    if config is None or config.get("name") not in PROBES:
        raise ValueError(
            f"probe={probe!r} is unknown: pass a Probe (e.g. LogisticRegressionProbe(C=1.0)), one of the names "
            f"{sorted(PROBES)}, or a probe's to_config() dict."
        )
    return PROBES[config.pop("name")](**config)


@dataclass
class FittedProbe:
    """A fitted probe in raw activation space: `s(a) = a @ weight.T + bias` (`- ||(a - shift) / scale||^2 / 2`
    when `quadratic`); `center` is the training mean (the anchor of `ProbeExplainer.decode`)."""

    weight: torch.Tensor  # (k, d)
    bias: torch.Tensor  # (k,)
    shift: torch.Tensor  # (d,) the standardisation mean (zeros without standardisation)
    scale: torch.Tensor  # (d,) the standardisation std (ones without standardisation)
    center: torch.Tensor  # (d,)
    quadratic: bool = False

    def scores(self, rows: torch.Tensor) -> torch.Tensor:
        """Scores `(n, k)` of raw activations `(n, d)`."""
        scores = rows @ self.weight.T + self.bias
        if self.quadratic:
            scores = scores - 0.5 * (((rows - self.shift) / self.scale) ** 2).sum(dim=1, keepdim=True)
        return scores


def fit_probe(
    probe: Probe, rows: torch.Tensor, targets: np.ndarray, n_classes: int, seed: int
) -> FittedProbe:
    """Fits `probe` on raw activations `rows (n, d)` and class codes `targets (n,)` (or floats `(n,)` /
    `(n, t)` for regression), and maps its weights back to raw activation space."""
    x = rows.detach().double().cpu().numpy()
    center = x.mean(axis=0)
    if probe.standardize:
        shift, scale = center, x.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
    else:
        shift, scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
    weight, bias = probe._solve((x - shift) / scale, targets, n_classes, seed)
    weight, bias = np.asarray(weight, dtype=float), np.asarray(bias, dtype=float)
    raw_weight = weight / scale
    raw_bias = bias - weight @ (shift / scale)

    def tensor(value: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(value), dtype=torch.float32)

    return FittedProbe(
        tensor(raw_weight), tensor(raw_bias), tensor(shift), tensor(scale), tensor(center), probe.quadratic
    )


def _fit_converged(model: Any, x: np.ndarray, y: np.ndarray, probe: Probe) -> None:
    """Fits a scikit-learn model and re-raises its convergence warning with the fix."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    for w in caught:
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn(w.message, w.category, stacklevel=4)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        warnings.warn(
            f"{type(probe).__name__} did not converge in max_iter={probe.max_iter} iterations: raise max_iter=, "
            f"use standardize=True, or lower C.",
            ConvergenceWarning,
            stacklevel=4,
        )
