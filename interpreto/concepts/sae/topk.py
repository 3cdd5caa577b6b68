"""The TopK SAE (Gao et al. 2024): exactly `top_k` active concepts per row."""

from __future__ import annotations

import torch
from torch import nn

from interpreto.concepts.sae.base import SAEConcepts, SAEModule, auxk_loss, overcomplete_sae
from interpreto.model.split_points import ModelWithSplitPoints


class TopKSAEConcepts(SAEConcepts):
    """A sparse autoencoder that keeps the `top_k` largest activations of each row.

    `z = TopK_k(ReLU((a - b_dec) @ W_enc + b_enc))` (the other entries zeroed), `a^ = z @ W_dec + b_dec`, the
    dictionary `W_dec` with unit rows. Loss on the scaled rows `u` (see `interpreto.concepts.sae.base`):
    `mean ||u - u^||^2 / hidden + aux_coefficient * AuxK`, where AuxK makes the `hidden / 2` most active dead
    concepts reconstruct the residual `u - u^` (normalised by the batch's variance), so that dead concepts
    come back to life.

    Gao et al. 2024, "Scaling and evaluating sparse autoencoders", https://arxiv.org/abs/2406.04093.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        nb_concepts: the dictionary size.
        split_point: the split point (see `ConceptExplainer`).
        top_k: active concepts per row.
        aux_coefficient: the weight of the AuxK loss (Gao et al. use 1/32); 0 disables it.
        device: where training and encoding run.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import TopKSAEConcepts
        >>> rows = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
        >>> sae = TopKSAEConcepts(None, nb_concepts=8, top_k=2).fit(rows, nb_epochs=2, progress=False)
        >>> int((sae.encode(rows) > 0).sum(dim=1).max())  # at most top_k (fewer when fewer are positive)
        2
    """

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        top_k: int = 32,
        aux_coefficient: float = 1 / 32,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)
        self.top_k = top_k
        self.aux_coefficient = aux_coefficient

    def _check_params(self) -> None:
        check_top_k(self.top_k, self.nb_concepts)
        if not self.aux_coefficient >= 0:
            raise ValueError(f"aux_coefficient must be >= 0 (0 disables AuxK), got {self.aux_coefficient!r}.")

    def _new_sae(self, dim: int) -> nn.Module:
        return overcomplete_sae().TopKSAE(dim, self.nb_concepts, top_k=self.top_k, encoder_module="linear")

    def _activate(self, pre: torch.Tensor) -> torch.Tensor:
        top = torch.relu(pre).topk(self.top_k, dim=1)
        return torch.zeros_like(pre).scatter(1, top.indices, top.values)

    def _sparsity_loss(self, module: SAEModule, rows, pre, codes, rebuilt, dead) -> torch.Tensor | float:
        if self.aux_coefficient == 0:
            return 0.0
        return self.aux_coefficient * auxk_loss(module, rows, pre, rebuilt, dead)


def check_top_k(top_k: int, nb_concepts: int) -> None:
    """Raises a `ValueError` unless `1 <= top_k <= nb_concepts`."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= nb_concepts:
        raise ValueError(f"top_k must be an integer in [1, nb_concepts={nb_concepts}], got {top_k!r}.")
