"""Neurons as concepts: each hidden dimension of the split point is a concept (the identity dictionary)."""

from __future__ import annotations

import torch

from interpreto.concepts.base import ConceptExplainer
from interpreto.concepts.data import ActivationData
from interpreto.model.split_points import ModelWithSplitPoints


class NeuronsAsConcepts(ConceptExplainer):
    """The split point's neurons as concepts: `encode(a) = a`, `decode(z) = z`, `dictionary = I`.

    The baseline every learned dictionary is compared with; nothing to learn, so `fit` only records the hidden
    size (`nb_concepts` is the hidden size, None until known).

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        split_point: the split point (see `ConceptExplainer`).
        nb_concepts: the hidden size; None sets it at `fit`.
        device: where encoding runs.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import NeuronsAsConcepts
        >>> neurons = NeuronsAsConcepts(None).fit(torch.randn(5, 3))
        >>> bool((neurons.decode(neurons.encode(torch.ones(2, 3))) == 1).all()), neurons.dictionary.shape
        (True, torch.Size([3, 3]))
    """

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        split_point: int | str | None = None,
        nb_concepts: int | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)

    def fit(self, activations, **kwargs) -> NeuronsAsConcepts:
        """Records the hidden size of `activations` (no learning); see `ConceptExplainer.fit`."""
        data = self.activation_data(activations)
        if self.nb_concepts is not None and self.nb_concepts != data.dim:
            raise ValueError(f"nb_concepts={self.nb_concepts} but the activations have {data.dim} neurons.")
        self.nb_concepts = data.dim
        return super().fit(activations, **kwargs)

    def _fit(self, data: ActivationData, **kwargs) -> None:
        pass

    def _encode(self, rows: torch.Tensor) -> torch.Tensor:
        return rows.clone()

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes.clone()

    def _dictionary(self) -> torch.Tensor:
        return torch.eye(self.nb_concepts)

    def _state(self) -> dict[str, torch.Tensor]:
        return {}

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        pass
