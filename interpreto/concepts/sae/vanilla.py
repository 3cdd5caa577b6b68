"""The vanilla (ReLU) SAE with an L1 penalty (Bricken et al. 2023)."""

from __future__ import annotations

import torch
from torch import nn

from interpreto.concepts.sae.base import SAEConcepts, SAEModule, overcomplete_sae
from interpreto.model.split_points import ModelWithSplitPoints


class VanillaSAEConcepts(SAEConcepts):
    """A ReLU sparse autoencoder trained with an L1 penalty on its codes.

    `z = ReLU((a - b_dec) @ W_enc + b_enc)`, `a^ = z @ W_dec + b_dec`, the dictionary `W_dec` with unit rows.
    Loss on the scaled rows `u` (see `interpreto.concepts.sae.base`): `mean ||u - u^||^2 / hidden +
    l1_coefficient * mean_rows ||z||_1`, the L1 norm per row averaged over the batch (not summed over it).

    Bricken et al. 2023, "Towards Monosemanticity: Decomposing Language Models With Dictionary Learning",
    https://transformer-circuits.pub/2023/monosemantic-features.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        nb_concepts: the dictionary size.
        split_point: the split point (see `ConceptExplainer`).
        l1_coefficient: the weight of the L1 penalty; larger gives sparser codes (fewer active concepts).
        device: where training and encoding run.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import VanillaSAEConcepts
        >>> sae = VanillaSAEConcepts(None, nb_concepts=8).fit(torch.randn(64, 4), nb_epochs=2, progress=False)
        >>> sae.encode(torch.randn(3, 4)).shape, bool((sae.encode(torch.randn(3, 4)) >= 0).all())
        (torch.Size([3, 8]), True)
    """

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        l1_coefficient: float = 0.03,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)
        self.l1_coefficient = l1_coefficient

    def _check_params(self) -> None:
        if not self.l1_coefficient >= 0:
            raise ValueError(f"l1_coefficient must be >= 0, got {self.l1_coefficient!r}.")

    def _new_sae(self, dim: int) -> nn.Module:
        return overcomplete_sae().SAE(dim, self.nb_concepts, encoder_module="linear")

    def _activate(self, pre: torch.Tensor) -> torch.Tensor:
        return torch.relu(pre)

    def _sparsity_loss(self, module: SAEModule, rows, pre, codes, rebuilt, dead) -> torch.Tensor:
        return self.l1_coefficient * codes.abs().sum(dim=1).mean()
