"""`ProbeExplainer`: supervised concepts, one per labelled class (or regression target), read by a probe.

Where unsupervised methods discover directions, a probe is told what to look for: activations come with labels
(a class per row, or a number), and each class gets the direction along which the probe reads it (Alain &
Bengio, 2016). The concepts then behave like any other `ConceptExplainer`'s: `encode` gives the probe's scores,
`dictionary` the unit directions, `save` / `load_concepts` round-trip them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interpreto.concepts.base import CONFIG_FILE, ConceptExplainer
from interpreto.concepts.data import ActivationData, ActivationSource
from interpreto.concepts.probes.linear import FittedProbe, Probe, fit_probe, make_probe
from interpreto.model.activations import Activations
from interpreto.model.split_points import ModelWithSplitPoints

Labels = list | np.ndarray | torch.Tensor


class ProbeExplainer(ConceptExplainer):
    """Concepts given by labels: a probe fitted on `(activations, labels)`, one concept per class or target.

    `encode(a) = s(a) = a @ W.T + b` `(rows, nb_concepts)`, the probe's decision scores (logits for
    `LogisticRegressionProbe`, margins for `LinearSVMProbe`, predictions for `LinearRegressionProbe`, signed
    distances from the midpoint for `MeansDiffProbe`, `-||a~ - m_c||^2 / 2` for `CentroidProbe`), with `W`, `b`
    in raw activation space (standardised probes are mapped back: `w = w~ / sigma`). `dictionary` holds the
    unit rows `W_k / ||W_k||`. `decode(z)` is the least-squares inverse of the scores: the activation closest
    to the training mean `mu` whose scores are `z`, `mu + (z - s(mu)) @ pinv(W).T` (in the span of the
    dictionary; `encode(decode(z)) = z` when the directions are independent); for `CentroidProbe` it is the
    centroids weighted by `softmax(z)`.

    Binary labels give one concept (the second class in sorted order, e.g. `1` or `"positive"`) for every probe
    but `CentroidProbe` (one per class); `nb_concepts` and `concept_names` (the class labels, or `"target"` /
    `"target_j"` for regression) are set by `fit`.

    Reference: G. Alain and Y. Bengio, "Understanding intermediate layers using linear classifier probes", 2016.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`); None for activations alone.
        probe: a `Probe` (`LogisticRegressionProbe(C=1.0)`, `LinearSVMProbe()`, `LinearRegressionProbe()`,
            `MeansDiffProbe()`, `CentroidProbe()`), its name (`"logistic_regression"`, ...) or its `to_config()`
            dict. `get_params()` (and `save`) report it as its `to_config()` dict.
        split_point: the split point (see `ConceptExplainer`).
        device: where encoding runs; fitting runs scikit-learn on CPU.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import LogisticRegressionProbe, ProbeExplainer
        >>> g = torch.Generator().manual_seed(0)
        >>> labels = torch.arange(40) % 2
        >>> acts = torch.randn(40, 4, generator=g) + 3 * labels[:, None] * torch.tensor([1.0, 0, 0, 0])
        >>> probe = ProbeExplainer(None, LogisticRegressionProbe(C=1.0)).fit(acts, labels)
        >>> probe.concept_names, probe.encode(acts).shape, probe.score(acts, labels) >= 0.9
        ([1], torch.Size([40, 1]), True)
        >>> round(float(probe.dictionary[0, 0]), 1)
        1.0
    """

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        probe: Probe | str | dict = "logistic_regression",
        split_point: int | str | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, None, split_point=split_point, device=device)
        self.probe = probe
        self.classes: list | None = None
        self.concept_names: list | None = None
        self._fitted: FittedProbe | None = None

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments, the probe as its JSON `to_config()` dict."""
        params = super().get_params()
        params["probe"] = make_probe(self.probe).to_config()
        return params

    # ---- fitting and reading --------------------------------------------------------------------------------

    def fit(self, activations: ActivationSource, labels: Labels, seed: int = 0) -> ProbeExplainer:
        """Fits the probe on `activations` and their `labels`.

        Args:
            activations: see `ConceptExplainer.fit` (all rows are read into memory).
            labels: one per row: class labels (ints, strings, ...) for classifiers, floats `(rows,)` or
                `(rows, targets)` for `LinearRegressionProbe`. For `Activations` with several rows per input,
                one label per input is also accepted (each row gets its input's label).
            seed: the solvers' `random_state`.

        Returns:
            The explainer, fitted.
        """
        probe = make_probe(self.probe)
        data = self.activation_data(activations)
        labels = self._row_labels(activations, labels, data.n_rows)
        targets, n_classes, self.classes, self.concept_names = _targets(probe, labels)
        self.nb_concepts = probe.n_concepts(n_classes)
        return super().fit(activations, probe=probe, targets=targets, n_classes=n_classes, seed=seed)

    def predict(self, activations: torch.Tensor | Activations) -> list | torch.Tensor:
        """Predicted class labels (a list) or, for regression, predictions `(rows,)` / `(rows, targets)`."""
        scores = self.encode(activations).cpu()
        if self.classes is None:
            return scores[:, 0] if self.concept_names == ["target"] else scores
        if scores.shape[1] == 1:
            picks = (scores[:, 0] > 0).long()
        else:
            picks = scores.argmax(dim=1)
        return [self.classes[k] for k in picks.tolist()]

    def score(self, activations: torch.Tensor | Activations, labels: Labels) -> float:
        """Accuracy of `predict` for classifiers; for regression the coefficient of determination R^2 (per
        target, around each target's own mean, then averaged)."""
        rows = activations.activations if isinstance(activations, Activations) else activations
        labels = self._row_labels(activations, labels, rows.shape[0])
        predictions = self.predict(activations)
        if self.classes is None:
            truth = torch.as_tensor(np.asarray(labels, dtype=float)).reshape(predictions.shape).double()
            residual = ((truth - predictions.double()) ** 2).sum(dim=0)
            total = ((truth - truth.mean(dim=0)) ** 2).sum(dim=0)
            return float((1 - residual / total).mean())
        truth = labels.tolist() if hasattr(labels, "tolist") else list(labels)
        return float(np.mean([p == t for p, t in zip(predictions, truth, strict=True)]))

    @property
    def weight(self) -> torch.Tensor:
        """The probe's weights `W` `(nb_concepts, hidden)` in raw activation space (not normalised), on CPU."""
        self._check_fitted()
        return self._fitted.weight.cpu()

    @property
    def bias(self) -> torch.Tensor:
        """The probe's intercepts `b` `(nb_concepts,)` in raw activation space, on CPU."""
        self._check_fitted()
        return self._fitted.bias.cpu()

    # ---- ConceptExplainer -----------------------------------------------------------------------------------

    def _fit(
        self, data: ActivationData, probe: Probe, targets: np.ndarray, n_classes: int, seed: int = 0
    ) -> None:
        rows = data.tensor(method="ProbeExplainer")
        self._set(fit_probe(probe, rows, targets, n_classes, seed))

    def _encode(self, rows: torch.Tensor) -> torch.Tensor:
        return self._fitted.scores(rows)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        fitted = self._fitted
        if fitted.quadratic:
            centroids = fitted.shift + fitted.weight * fitted.scale**2
            return codes.softmax(dim=1) @ centroids
        anchor = fitted.center[None]
        return anchor + (codes - fitted.scores(anchor)) @ torch.linalg.pinv(fitted.weight).T

    def _dictionary(self) -> torch.Tensor:
        weight = self._fitted.weight
        return weight / weight.norm(dim=1, keepdim=True).clamp_min(torch.finfo(weight.dtype).tiny)

    def _state(self) -> dict[str, torch.Tensor]:
        fitted = self._fitted
        return {
            "weight": fitted.weight,
            "bias": fitted.bias,
            "shift": fitted.shift,
            "scale": fitted.scale,
            "center": fitted.center,
        }

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self._set(FittedProbe(**tensors, quadratic=make_probe(self.probe).quadratic))
        self.nb_concepts = tensors["weight"].shape[0]

    def save(self, path: str | Path) -> Path:
        """Writes the explainer (see `ConceptExplainer.save`), its class labels and concept names included."""
        folder = super().save(path)
        config = json.loads((folder / CONFIG_FILE).read_text())
        config["classes"], config["concept_names"] = self.classes, self.concept_names
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        return folder

    def restore(self, config: dict, tensors: dict[str, torch.Tensor]) -> ProbeExplainer:
        """Sets the fitted state read by `load_concepts`, class labels included."""
        self.classes, self.concept_names = config.get("classes"), config.get("concept_names")
        return super().restore(config, tensors)

    # ---- plumbing -------------------------------------------------------------------------------------------

    def _set(self, fitted: FittedProbe) -> None:
        device = self.compute_device
        self._fitted = FittedProbe(
            *(getattr(fitted, name).to(device) for name in ("weight", "bias", "shift", "scale", "center")),
            quadratic=fitted.quadratic,
        )

    def _row_labels(self, activations: Any, labels: Labels, n_rows: int) -> Labels:
        """`labels` with one entry per row: per-input labels are spread over the rows of `Activations`."""
        if len(labels) == n_rows:
            return labels
        if isinstance(activations, dict) and len(activations) == 1:
            activations = next(iter(activations.values()))
        elif isinstance(activations, dict):
            activations = activations.get(self.resolved_split_point())
        if isinstance(activations, Activations) and len(activations):
            inputs = activations.input_indices
            if len(labels) == int(inputs.max()) + 1:
                if isinstance(labels, (np.ndarray, torch.Tensor)):
                    return labels[inputs.numpy() if isinstance(labels, np.ndarray) else inputs]
                return [labels[k] for k in inputs.tolist()]
        raise ValueError(
            f"labels: got {len(labels)} labels for {n_rows} activation rows: pass one label per row (or, for "
            f"Activations, one per input)."
        )


def _targets(probe: Probe, labels: Labels) -> tuple[np.ndarray, int, list | None, list]:
    """`(targets, n_classes, classes, concept_names)`: class codes for classifiers, floats for regression."""
    values = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if probe.task == "regression":
        values = values.astype(float)
        if values.ndim == 1:
            return values, 1, None, ["target"]
        return values, values.shape[1], None, [f"target_{j}" for j in range(values.shape[1])]
    if values.ndim != 1:
        raise ValueError(
            f"labels: a classifier probe needs one class label per row, got shape {values.shape}."
        )
    classes, codes = np.unique(values, return_inverse=True)
    classes = classes.tolist()
    if len(classes) < 2:
        raise ValueError(f"labels: a classifier probe needs at least two classes, got {classes}.")
    names = classes[1:] if probe.n_concepts(len(classes)) == 1 else classes
    return codes, len(classes), classes, names
