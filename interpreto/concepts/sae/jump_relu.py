"""The JumpReLU SAE (Rajamanoharan et al. 2024): a learned threshold per concept and an L0 penalty."""

from __future__ import annotations

import math

import torch
from torch import nn

from interpreto.concepts.sae.base import SAEConcepts, SAEModule, overcomplete_sae
from interpreto.model.split_points import ModelWithSplitPoints


class JumpReLUSAEConcepts(SAEConcepts):
    """A sparse autoencoder whose concepts fire above a learned threshold, trained with an L0 penalty.

    `z = ReLU(pre) * (pre > threshold)` with `pre = (a - b_dec) @ W_enc + b_enc`, `a^ = z @ W_dec + b_dec`,
    the dictionary `W_dec` with unit rows. Loss on the scaled rows `u` (see `interpreto.concepts.sae.base`):
    `mean ||u - u^||^2 / hidden + sparsity_coefficient * mean_rows ||z||_0`. The step functions have no
    gradient: the thresholds get the straight-through pseudo-gradients of the paper (a kernel of width
    `bandwidth` around each threshold; overcomplete's `JumpSAE` and `heaviside`, whose kernels carry one more
    1 / bandwidth factor than the paper's, a scale Adam's per-parameter normalisation removes). The L0 term is
    what makes the codes sparse: trained on the reconstruction alone, ReLU and JumpReLU SAEs stay dense.
    Thresholds are learned as logarithms (positive), starting at `initial_threshold`.

    Rajamanoharan et al. 2024, "Jumping Ahead: Improving Reconstruction Fidelity with JumpReLU Sparse
    Autoencoders", https://arxiv.org/abs/2407.14435.

    Args:
        model_with_split_points: the split model (see `ConceptExplainer`).
        nb_concepts: the dictionary size.
        split_point: the split point (see `ConceptExplainer`).
        sparsity_coefficient: the weight of the L0 penalty; larger gives fewer active concepts.
        bandwidth: the width of the pseudo-gradient's kernel, in units of the scaled rows.
        initial_threshold: the thresholds' value at the start of training (scaled rows).
        kernel: overcomplete's kernel of the pseudo-gradient: `"rectangle"` (the paper's), `"gaussian"`, ...
        device: where training and encoding run.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import JumpReLUSAEConcepts
        >>> sae = JumpReLUSAEConcepts(None, nb_concepts=8).fit(torch.randn(64, 4), progress=False)
        >>> bool((sae.weights_["threshold"] > 0).all())
        True
    """

    extra_tensor_names = ("threshold",)

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        sparsity_coefficient: float = 1e-3,
        bandwidth: float = 0.05,
        initial_threshold: float = 0.5,
        kernel: str = "rectangle",
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)
        self.sparsity_coefficient = sparsity_coefficient
        self.bandwidth = bandwidth
        self.initial_threshold = initial_threshold
        self.kernel = kernel

    def _check_params(self) -> None:
        kernels = overcomplete_sae().JumpSAE._KERNELS
        if not self.sparsity_coefficient >= 0:
            raise ValueError(f"sparsity_coefficient must be >= 0, got {self.sparsity_coefficient!r}.")
        for name in ("bandwidth", "initial_threshold"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}.")
        if self.kernel not in kernels:
            raise ValueError(f"kernel must be one of {sorted(kernels)}, got {self.kernel!r}.")

    def _new_sae(self, dim: int) -> nn.Module:
        sae = overcomplete_sae().JumpSAE(
            dim, self.nb_concepts, kernel=self.kernel, bandwidth=self.bandwidth, encoder_module="linear"
        )
        with torch.no_grad():
            sae.thresholds.fill_(math.log(self.initial_threshold))  # overcomplete learns log-thresholds
        return sae

    def _activate(self, pre: torch.Tensor) -> torch.Tensor:
        return torch.relu(pre) * (pre > self.weights_["threshold"])

    def _sparsity_loss(self, module: SAEModule, rows, pre, codes, rebuilt, dead) -> torch.Tensor:
        sae = module.sae
        active = overcomplete_sae().jump_sae.heaviside(
            pre, torch.exp(sae.thresholds), sae.kernel_fn, sae.bandwidth
        )
        return self.sparsity_coefficient * active.sum(dim=1).mean()

    def _extra_tensors(self, module: SAEModule) -> dict[str, torch.Tensor]:
        return {"threshold": torch.exp(module.sae.thresholds) * module.scale}
