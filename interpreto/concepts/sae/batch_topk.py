"""The BatchTopK SAE (Bussmann et al. 2024): `top_k` active concepts per row on average over a batch."""

from __future__ import annotations

import torch
from torch import nn

from interpreto.concepts.sae.base import SAEConcepts, SAEModule, auxk_loss, overcomplete_sae
from interpreto.concepts.sae.topk import check_top_k
from interpreto.model.split_points import ModelWithSplitPoints


class BatchTopKSAEConcepts(SAEConcepts):
    """A sparse autoencoder that keeps the `top_k x rows` largest activations of each training batch, and at
    inference the activations above one threshold learned during training.

    Training: `z = ReLU(pre)` where it is among the batch's `top_k x rows` largest, 0 elsewhere, with
    `pre = (a - b_dec) @ W_enc + b_enc`; `a^ = z @ W_dec + b_dec`, the dictionary `W_dec` with unit rows. Loss
    as `TopKSAEConcepts` (reconstruction + `aux_coefficient * AuxK`). Inference: `z = ReLU(pre) * (pre >
    threshold)` with the threshold tracked during training (a moving average of the batches' k-th largest
    activation), so a row's code depends on it alone and the number of active concepts varies with the row
    (about `top_k` on average). The saved `threshold` holds it once per concept (the JumpReLU form).

    Bussmann et al. 2024, "BatchTopK Sparse Autoencoders", https://arxiv.org/abs/2412.06410.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        nb_concepts: the dictionary size.
        split_point: the split point (see `ConceptExplainer`).
        top_k: mean active concepts per row.
        aux_coefficient: the weight of the AuxK loss (Gao et al. 2024); 0 disables it.
        threshold_momentum: the momentum of the threshold's moving average over batches.
        device: where training and encoding run.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import BatchTopKSAEConcepts
        >>> sae = BatchTopKSAEConcepts(None, nb_concepts=8, top_k=2).fit(torch.randn(64, 4), progress=False)
        >>> sae.weights_["threshold"].shape
        torch.Size([8])
    """

    extra_tensor_names = ("threshold",)

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        top_k: int = 32,
        aux_coefficient: float = 1 / 32,
        threshold_momentum: float = 0.9,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)
        self.top_k = top_k
        self.aux_coefficient = aux_coefficient
        self.threshold_momentum = threshold_momentum

    def _check_params(self) -> None:
        check_top_k(self.top_k, self.nb_concepts)
        if not self.aux_coefficient >= 0:
            raise ValueError(f"aux_coefficient must be >= 0 (0 disables AuxK), got {self.aux_coefficient!r}.")
        if not 0 <= self.threshold_momentum < 1:
            raise ValueError(f"threshold_momentum must be in [0, 1), got {self.threshold_momentum!r}.")

    def _new_sae(self, dim: int) -> nn.Module:
        return overcomplete_sae().BatchTopKSAE(
            dim, self.nb_concepts, top_k=self.top_k, threshold_momentum=self.threshold_momentum,
            encoder_module="linear",
        )  # fmt: skip

    def _before_step(self, sae: nn.Module, n_rows: int) -> None:
        sae.top_k = self.top_k * n_rows  # overcomplete's top_k counts the whole batch's activations

    def _activate(self, pre: torch.Tensor) -> torch.Tensor:
        return torch.relu(pre) * (pre > self.weights_["threshold"])

    def _sparsity_loss(self, module: SAEModule, rows, pre, codes, rebuilt, dead) -> torch.Tensor | float:
        if self.aux_coefficient == 0:
            return 0.0
        return self.aux_coefficient * auxk_loss(module, rows, pre, rebuilt, dead)

    def _extra_tensors(self, module: SAEModule) -> dict[str, torch.Tensor]:
        threshold = module.sae.running_threshold * module.scale
        return {"threshold": threshold.expand(self.nb_concepts)}
