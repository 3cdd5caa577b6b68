"""The base of every concept explainer: learn a dictionary on a split point's activations, encode, decode, save.

A concept explainer maps activations `a` (rows of `hidden` floats read at one split point of a
`ModelWithSplitPoints`) to concept codes `z = encode(a)` `(rows, nb_concepts)` and back, `decode(z)` `(rows,
hidden)`; `dictionary` holds one direction per concept `(nb_concepts, hidden)`. Subclasses define `_fit`,
`_encode`, `_decode`, `_dictionary` and, for saving, `_state` / `_load_state` (the tensors that define a fitted
explainer). Everything else (argument checks, split point, devices, the fitted check, save) lives here.

Hyper-parameters are constructor arguments stored as given (as in scikit-learn): `get_params()` returns them and
`save` writes them as JSON next to a safetensors file of the fitted tensors; `interpreto.concepts.load_concepts`
reads both back. Nothing is pickled.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import torch

from interpreto.concepts.data import ActivationData, ActivationSource
from interpreto.model.activations import Activations
from interpreto.model.split_points import ModelWithSplitPoints

FORMAT = "interpreto-concepts"
FORMAT_VERSION = 1
CONFIG_FILE, TENSORS_FILE = "config.json", "concepts.safetensors"


class NotFittedError(RuntimeError):
    """Raised when a concept explainer is used before `fit`."""


class ConceptExplainer:
    """Base of concept explainers.

    Args:
        model_with_split_points: the split model the activations come from (kept to resolve `split_point`
            and for interpretation and importance); None for a dictionary used on activations alone.
        nb_concepts: the number of concepts to learn.
        split_point: the split point the concepts live at: a block index or module path of
            `model_with_split_points`; None takes its only split point (or, without a model, the activations').
        device: where fitting and encoding run (`"cuda"`, `"cpu"`, ...); None runs on CPU.
    """

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        device: torch.device | str | None = None,
    ):
        self.model_with_split_points = model_with_split_points
        self.nb_concepts = nb_concepts
        self.split_point = split_point
        self.device = device
        self.is_fitted = False
        self.fitted_split_point: str | None = None
        self.input_dim: int | None = None

    # ---- public API -------------------------------------------------------------------------------------------

    def fit(self, activations: ActivationSource, **kwargs: Any) -> ConceptExplainer:
        """Learns the concepts on `activations` of the split point.

        Args:
            activations: `Activations`, the `{split_point: Activations}` of `get_activations`, a `(rows, hidden)`
                tensor, or the `save_dir` shard folder of `get_activations(..., save_dir=...)` (streamed by the
                methods that can; see each class).
            **kwargs: the method's fitting options (`seed=`, and for SAEs `nb_epochs=`, `batch_size=`, ...).

        Returns:
            The explainer itself, fitted.
        """
        self._check_nb_concepts()
        data = self.activation_data(activations)
        self._fit(data, **kwargs)
        self.fitted_split_point = data.split_point
        self.input_dim = data.dim
        self.is_fitted = True
        return self

    def encode(self, activations: torch.Tensor | Activations) -> torch.Tensor:
        """Concept codes `(rows, nb_concepts)` of activations `(rows, hidden)`, on the activations' device."""
        rows, device = self._input_rows(activations)
        with torch.inference_mode():
            return self._encode(rows).float().to(device)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Activations `(rows, hidden)` rebuilt from concept codes `(rows, nb_concepts)`."""
        self._check_fitted()
        if codes.dim() != 2 or codes.shape[1] != self.nb_concepts:
            raise ValueError(
                f"codes must have shape (rows, {self.nb_concepts}), got {tuple(codes.shape)}: pass the output "
                f"of encode."
            )
        with torch.inference_mode():
            return self._decode(codes.float().to(self.compute_device)).float().to(codes.device)

    def reconstruct(self, activations: torch.Tensor | Activations) -> torch.Tensor:
        """`decode(encode(activations))`."""
        return self.decode(self.encode(activations))

    @property
    def dictionary(self) -> torch.Tensor:
        """The concept directions `(nb_concepts, hidden)` (what `decode` combines), on CPU."""
        self._check_fitted()
        return self._dictionary().detach().float().cpu()

    @property
    def compute_device(self) -> torch.device:
        """Where fitting and encoding run."""
        return torch.device(self.device) if self.device is not None else torch.device("cpu")

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments as given, the split model excluded."""
        names = [name for name in inspect.signature(type(self).__init__).parameters if name != "self"]
        return {name: getattr(self, name) for name in names if name != "model_with_split_points"}

    def save(self, path: str | Path) -> Path:
        """Writes the fitted explainer to the folder `path`: `config.json` (class, parameters, split point) and
        `concepts.safetensors` (its tensors). Load it with `interpreto.concepts.load_concepts(path)`."""
        from safetensors.torch import save_file

        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        params = {key: _jsonable(key, value) for key, value in self.get_params().items()}
        config = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "class": type(self).__name__,
            "params": params,
            "split_point": self.fitted_split_point,
            "input_dim": self.input_dim,
        }
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        tensors = {name: value.detach().float().cpu().contiguous() for name, value in self._state().items()}
        save_file(tensors, str(folder / TENSORS_FILE))
        return folder

    def restore(self, config: dict, tensors: dict[str, torch.Tensor]) -> ConceptExplainer:
        """Sets the fitted state read by `load_concepts` (the inverse of `save`)."""
        self._load_state({name: value.to(self.compute_device) for name, value in tensors.items()})
        self.fitted_split_point = config.get("split_point")
        self.input_dim = config.get("input_dim")
        self.is_fitted = True
        return self

    # ---- importance and interventions (see `interpreto.concepts.importance` and `.interventions`) --------------

    def concept_attributions(
        self, inputs: Any, targets: Any = None, method: Any = None, **kwargs: Any
    ) -> list:
        """Concept-to-output attributions with any attribution method, the reconstruction error a player of its
        own: `interpreto.concepts.importance.concept_attributions(self, inputs, targets, method, ...)`."""
        from interpreto.concepts.importance import concept_attributions

        if method is not None:
            kwargs["method"] = method
        return concept_attributions(self, inputs, targets, **kwargs)

    def input_to_concept(self, inputs: Any, concepts: Any, method: Any = None, **kwargs: Any) -> list:
        """Which input elements activate `concepts`: `interpreto.concepts.importance.input_to_concept`."""
        from interpreto.concepts.importance.input_to_concept import input_to_concept

        if method is not None:
            kwargs["method"] = method
        return input_to_concept(self, inputs, concepts, **kwargs)

    def intervene(self, inputs: Any, interventions: dict[int, float], **kwargs: Any) -> Any:
        """The model's output with concepts set, scaled or shifted at the split point, the error kept:
        `interpreto.concepts.interventions.intervene(self, inputs, interventions, ...)`."""
        from interpreto.concepts.interventions import intervene

        return intervene(self, inputs, interventions, **kwargs)

    def steer(self, prompts: Any, concept: int, alpha: float, **kwargs: Any) -> list:
        """Generation with a concept's direction added (or the concept clamped) at every step:
        `interpreto.concepts.interventions.steer(self, prompts, concept, alpha, ...)`."""
        from interpreto.concepts.interventions import steer

        return steer(self, prompts, concept, alpha, **kwargs)

    # ---- for subclasses ---------------------------------------------------------------------------------------

    def _fit(self, data: ActivationData, **kwargs: Any) -> None:
        raise NotImplementedError

    def _encode(self, rows: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _dictionary(self) -> torch.Tensor:
        raise NotImplementedError

    def _state(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    # ---- plumbing ---------------------------------------------------------------------------------------------

    def activation_data(self, activations: ActivationSource) -> ActivationData:
        """`activations` as `ActivationData` of this explainer's split point."""
        if isinstance(activations, list) and activations and isinstance(activations[0], str):
            raise TypeError(
                "activations: got texts; compute their activations first: "
                "model_with_split_points.get_activations(texts) (or with save_dir= for a large dataset)."
            )
        return ActivationData(activations, self.resolved_split_point())

    def resolved_split_point(self) -> str | None:
        """The split point's module path, or None when neither it nor a split model says which."""
        splitter = self.model_with_split_points
        if self.fitted_split_point is not None:
            return self.fitted_split_point
        if splitter is None:
            return self.split_point if isinstance(self.split_point, str) else None
        if self.split_point is None:
            if len(splitter.split_points) != 1:
                raise ValueError(
                    f"split_point: the model is split at {splitter.split_points}: pass split_point= to choose."
                )
            return splitter.split_points[0]
        from interpreto.model._architectures import resolve_split_points

        (point,) = resolve_split_points(splitter.model, self.split_point)
        return point.name

    def _input_rows(self, activations: torch.Tensor | Activations) -> tuple[torch.Tensor, torch.device]:
        self._check_fitted()
        if isinstance(activations, dict):
            activations = ActivationData(activations, self.fitted_split_point).tensor()
        if isinstance(activations, Activations):
            activations = activations.activations
        if not isinstance(activations, torch.Tensor) or activations.dim() != 2:
            raise TypeError("activations must be a (rows, hidden) tensor or Activations.")
        if self.input_dim is not None and activations.shape[1] != self.input_dim:
            raise ValueError(
                f"activations have {activations.shape[1]} features but the concepts were fitted on "
                f"{self.input_dim} (split point {self.fitted_split_point}): pass activations of that split point."
            )
        return activations.detach().float().to(self.compute_device), activations.device

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call .fit(activations) first (or load a fitted one with "
                f"interpreto.concepts.load_concepts(path))."
            )

    def _check_nb_concepts(self) -> None:
        n = self.nb_concepts
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"nb_concepts must be a positive integer, got {n!r}.")

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({params})"


def _jsonable(key: str, value: Any) -> Any:
    """`value` if JSON can hold it (devices become strings), else a `TypeError` naming the parameter."""
    if isinstance(value, torch.device):
        return str(value)
    try:
        json.dumps(value)
    except TypeError:
        raise TypeError(f"parameter {key}={value!r} cannot be saved as JSON.") from None
    return value
