"""Sparse autoencoders (SAEs) as concept explainers: the shared base and the training loop.

A fitted SAE is four tensors in the SAELens convention (and a per-concept `threshold` for the JumpReLU form):

    z = act((a - b_dec) @ W_enc + b_enc)        a^ = z @ W_dec + b_dec

`W_enc` `(hidden, nb_concepts)`, `b_enc` `(nb_concepts,)`, `W_dec` `(nb_concepts, hidden)` (the dictionary,
unit rows for SAEs trained here), `b_dec` `(hidden,)`. Each method file defines `act` (`_activate`), the
overcomplete module it trains and its sparsity loss; encoding, decoding, saving and training live here.

Training uses overcomplete's SAE modules (linear encoder without normalization layer, activation, unit-norm
dictionary) with a decoder bias `b_dec` added here (overcomplete's SAEs have none), and this module's own loop
rather than overcomplete's `train_sae` (which leaves the schedule's length to the caller and whose `mse_l1`
sums the L1 penalty over the batch, so its weight grows with the batch size):

- the rows are centered by `b_dec` (initialised to the first batch's mean) and divided by one scalar `s`, the
  first batch's root mean squared deviation per dimension, so the loss terms and hyper-parameters (L1 and L0
  coefficients, JumpReLU bandwidth) mean the same for every model; `s` is folded into the saved tensors, which
  act on the raw activations;
- loss: mean squared error over rows and dimensions (on the scaled rows: about the fraction of variance
  unexplained) plus the method's sparsity term;
- Adam; the learning rate warms up linearly over the first 5% of the steps, then decays along a cosine to 10%,
  stepped once per optimizer step, over `nb_epochs` x the batches of an epoch;
- decoder rows projected on the unit sphere before every step (overcomplete's `DictionaryLayer`);
- minibatches streamed by `ActivationData.batches`, so a shard folder larger than memory trains in one shard's
  memory; a concept is dead when it has not fired on the last `dead_after` training rows;
- `history_` per epoch, over the epoch's training batches: `loss`, `explained_variance`
  (`1 - sum ||a - a^||^2 / sum ||a - mean||^2`, the mean per dimension, sums in float64), `l0` (mean active
  concepts per row), `dead_fraction`.
"""

from __future__ import annotations

import contextlib
import math
from types import ModuleType
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from interpreto.concepts._overcomplete import import_overcomplete
from interpreto.concepts.base import ConceptExplainer
from interpreto.concepts.data import ActivationData, ActivationSource
from interpreto.model.split_points import ModelWithSplitPoints

WARMUP_FRACTION = 0.05
FINAL_LR_FRACTION = 0.1
DEAD_AFTER_ROWS = 10_000_000  # Gao et al. 2024: a latent is dead after 10M tokens without firing
TENSOR_NAMES = ("W_enc", "b_enc", "W_dec", "b_dec")


def overcomplete_sae() -> ModuleType:
    """The `overcomplete.sae` package, imported through the matplotlib shim (`import_overcomplete`)."""
    import_overcomplete()
    import overcomplete.sae

    return overcomplete.sae


class SAEModule(nn.Module):
    """An overcomplete SAE with the decoder bias it lacks: on scaled rows `u = a / s`,
    `(pre, z) = sae.encode(u - b_dec)`, `u^ = sae.decode(z) + b_dec`; `scale` holds `s`."""

    def __init__(self, sae: nn.Module, dim: int):
        super().__init__()
        self.sae = sae
        self.b_dec = nn.Parameter(torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pre, codes = self.sae.encode(rows - self.b_dec)
        return pre, codes, self.sae.decode(codes) + self.b_dec

    @property
    def encoder_linear(self) -> nn.Linear:
        """The encoder's linear layer (overcomplete's "linear" encoder: `Linear` then `Identity`)."""
        return self.sae.encoder.final_block[0]


class SAEConcepts(ConceptExplainer):
    """Base of the SAE explainers: `encode`, `decode`, `dictionary`, state and the training loop.

    Subclasses set their hyper-parameters in `__init__` and define `_new_sae(dim)` (the overcomplete module),
    `_activate(pre)` (codes from pre-activations, in the saved tensors' units) and `_sparsity_loss(...)`;
    `_extra_tensors(module)` adds tensors such as `threshold` to the saved state.
    """

    extra_tensor_names: tuple[str, ...] = ()

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints | None,
        nb_concepts: int,
        split_point: int | str | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__(model_with_split_points, nb_concepts, split_point=split_point, device=device)
        self.weights_: dict[str, torch.Tensor] = {}
        self.history_: dict[str, list[float]] = {}

    def fit(
        self,
        activations: ActivationSource,
        nb_epochs: int = 5,
        batch_size: int = 1024,
        seed: int = 0,
        lr: float | None = None,
        progress: bool = True,
        autocast: bool = False,
        dead_after: int | None = None,
    ) -> SAEConcepts:
        """Trains the SAE on `activations` (streamed in minibatches; shard folders are never loaded whole).

        Args:
            activations: see `ConceptExplainer.fit`.
            nb_epochs: passes over the rows.
            batch_size: rows per optimizer step.
            seed: seeds the initialisation and the minibatch order (the same seed gives the same SAE).
            lr: Adam's peak learning rate; None uses `2e-4 / sqrt(nb_concepts / 2**14)` (Gao et al. 2024).
            progress: show a tqdm bar over the steps.
            autocast: run the forward pass in bfloat16 autocast (CUDA devices only).
            dead_after: a concept not fired on this many consecutive training rows is dead (for `history_` and
                the dead-latent loss); None uses min(10M, rows in an epoch).

        Returns:
            The explainer, fitted; the per-epoch metrics are in `history_`.
        """
        return super().fit(
            activations,
            nb_epochs=nb_epochs,
            batch_size=batch_size,
            seed=seed,
            lr=lr,
            progress=progress,
            autocast=autocast,
            dead_after=dead_after,
        )

    # ---- for subclasses ------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        """Raises a `ValueError` naming a wrong hyper-parameter."""

    def _new_sae(self, dim: int) -> nn.Module:
        raise NotImplementedError

    def _activate(self, pre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _sparsity_loss(
        self, module: SAEModule, rows: torch.Tensor, pre: torch.Tensor, codes: torch.Tensor,
        rebuilt: torch.Tensor, dead: torch.Tensor,
    ) -> torch.Tensor | float:  # fmt: skip
        """The loss term added to the reconstruction error (scaled rows)."""
        return 0.0

    def _before_step(self, sae: nn.Module, n_rows: int) -> None:
        """Called before each training forward pass with the batch's row count."""

    def _extra_tensors(self, module: SAEModule) -> dict[str, torch.Tensor]:
        """Tensors besides `TENSOR_NAMES` that define the fitted SAE, in the raw activations' units."""
        return {}

    # ---- ConceptExplainer ----------------------------------------------------------------------------------

    def _encode(self, rows: torch.Tensor) -> torch.Tensor:
        weights = self.weights_
        return self._activate(torch.addmm(weights["b_enc"], rows - weights["b_dec"], weights["W_enc"]))

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.weights_["b_dec"], codes, self.weights_["W_dec"])

    def _dictionary(self) -> torch.Tensor:
        return self.weights_["W_dec"]

    def _state(self) -> dict[str, torch.Tensor]:
        return dict(self.weights_)

    def _load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        names = TENSOR_NAMES + self.extra_tensor_names
        missing = [name for name in names if name not in tensors]
        if missing:
            raise ValueError(f"{type(self).__name__}: the saved tensors lack {missing}.")
        dim, nb_concepts = tensors["W_enc"].shape
        expected = {
            "W_enc": (dim, nb_concepts), "b_enc": (nb_concepts,), "W_dec": (nb_concepts, dim),
            "b_dec": (dim,), "threshold": (nb_concepts,),
        }  # fmt: skip
        for name in names:
            if tuple(tensors[name].shape) != expected[name]:
                raise ValueError(
                    f"{type(self).__name__}: tensor {name} has shape {tuple(tensors[name].shape)}, expected "
                    f"{expected[name]} for {dim} features and {nb_concepts} concepts."
                )
        if nb_concepts != self.nb_concepts:
            raise ValueError(f"nb_concepts={self.nb_concepts} but the saved SAE has {nb_concepts} concepts.")
        self.weights_ = {name: tensors[name].float().to(self.compute_device) for name in names}

    # ---- training ------------------------------------------------------------------------------------------

    def _fit(
        self,
        data: ActivationData,
        nb_epochs: int = 5,
        batch_size: int = 1024,
        seed: int = 0,
        lr: float | None = None,
        progress: bool = True,
        autocast: bool = False,
        dead_after: int | None = None,
    ) -> None:
        for name, value in (("nb_epochs", nb_epochs), ("batch_size", batch_size), ("dead_after", dead_after)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if lr is not None and not lr > 0:
            raise ValueError(f"lr must be positive, got {lr!r}.")
        device = self.compute_device
        if autocast and device.type != "cuda":
            raise ValueError(
                f"autocast=True runs bfloat16 on CUDA only; the device is {device}: pass device='cuda'."
            )
        self._check_params()
        generator = torch.Generator().manual_seed(seed)
        module = self._new_module(data.dim, generator).to(device)
        lr = lr if lr is not None else 2e-4 / math.sqrt(self.nb_concepts / 2**14)
        total_steps = nb_epochs * data.n_batches(batch_size)
        optimizer = torch.optim.Adam(module.parameters(), lr=lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(total_steps))
        dead_after = dead_after or min(DEAD_AFTER_ROWS, data.n_rows)
        since_fired = torch.zeros(self.nb_concepts, dtype=torch.long, device=device)
        precision = torch.autocast("cuda", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        self.history_ = {"loss": [], "explained_variance": [], "l0": [], "dead_fraction": []}
        bar = tqdm(total=total_steps, desc=type(self).__name__, disable=not progress)
        module.train()
        for _ in range(nb_epochs):
            stats = _EpochStats(data.dim, device)
            for batch in data.batches(batch_size, generator):
                batch = batch.to(device, non_blocking=True)
                if stats.steps == 0 and not self.history_["loss"]:
                    _initialise_centre(module, batch)
                rows = batch / module.scale
                self._before_step(module.sae, rows.shape[0])
                with precision:
                    pre, codes, rebuilt = module(rows)
                    dead = since_fired >= dead_after
                    loss = (rebuilt.float() - rows).square().mean()
                    loss = loss + self._sparsity_loss(module, rows, pre, codes, rebuilt, dead)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                fired = (codes.detach() > 0).any(dim=0)
                since_fired = torch.where(fired, 0, since_fired + rows.shape[0])
                stats.add(rows, rebuilt.detach(), codes.detach(), loss.detach())
                bar.update()
            for name, value in stats.result(since_fired >= dead_after).items():
                self.history_[name].append(value)
            bar.set_postfix({name: f"{values[-1]:.3g}" for name, values in self.history_.items()})
        bar.close()
        # eval mode: overcomplete fuses the unit-norm dictionary, BatchTopK switches to its running threshold
        module.eval()
        self.weights_ = self._export(module)

    def _new_module(self, dim: int, generator: torch.Generator) -> SAEModule:
        """The overcomplete SAE with a decoder bias, initialised from `generator` only: random unit dictionary
        rows, encoder = dictionary transpose (Gao et al. 2024), zero biases."""
        with torch.random.fork_rng(devices=[]):  # overcomplete initialises from the global generator: undo it
            module = SAEModule(self._new_sae(dim), dim)
        dictionary = torch.randn(self.nb_concepts, dim, generator=generator)
        dictionary /= dictionary.norm(dim=1, keepdim=True)
        with torch.no_grad():
            module.sae.dictionary._weights.copy_(dictionary)
            module.encoder_linear.weight.copy_(dictionary)
            module.encoder_linear.bias.zero_()
        return module

    def _export(self, module: SAEModule) -> dict[str, torch.Tensor]:
        """The saved tensors of an eval-mode module, the scale folded in so they act on raw activations."""
        scale = module.scale
        linear = module.encoder_linear
        with torch.no_grad():
            tensors = {
                "W_enc": linear.weight.T.contiguous(),
                "b_enc": linear.bias * scale,
                "W_dec": module.sae.get_dictionary(),
                "b_dec": module.b_dec * scale,
                **self._extra_tensors(module),
            }
        return {name: value.detach().float().clone() for name, value in tensors.items()}


def lr_schedule(total_steps: int):
    """The learning-rate factor of each step: linear warm-up over `WARMUP_FRACTION` of the steps, then a
    cosine from 1 down to `FINAL_LR_FRACTION` at the last step."""
    warmup = max(1, round(WARMUP_FRACTION * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup - 1))
        return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def auxk_loss(
    module: SAEModule, rows: torch.Tensor, pre: torch.Tensor, rebuilt: torch.Tensor, dead: torch.Tensor
) -> torch.Tensor | float:
    """Gao et al. 2024's auxiliary loss: the `k_aux = hidden / 2` most active dead latents reconstruct the
    residual `e = u - u^`; `||e - e^||^2 / ||u - mean(u)||^2`, scaled by `min(1, dead / k_aux)`."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return 0.0
    k_aux = max(1, min(rows.shape[1] // 2, n_dead))
    candidates = torch.where(dead, pre, -torch.inf).topk(k_aux, dim=1)
    codes = torch.zeros_like(pre).scatter(1, candidates.indices, torch.relu(candidates.values))
    residual = (rows - rebuilt).detach()
    error = (module.sae.decode(codes) - residual).square().sum()
    total_variance = (rows - rows.mean(dim=0)).square().sum().clamp_min(1e-12)
    return min(1.0, n_dead / k_aux) * error / total_variance


def _initialise_centre(module: SAEModule, batch: torch.Tensor) -> None:
    """`b_dec` (scaled) = the batch's mean, `scale` = its root mean squared deviation per dimension."""
    with torch.no_grad():
        mean = batch.mean(dim=0)
        scale = (batch - mean).square().mean().sqrt()
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        module.scale.copy_(scale)
        module.b_dec.copy_(mean / scale)


class _EpochStats:
    """Sums over an epoch's batches, on the training device (no synchronisation per step)."""

    def __init__(self, dim: int, device: torch.device):
        zeros = torch.zeros((), dtype=torch.float64, device=device)
        self.steps, self.rows = 0, 0
        self.loss, self.error, self.active = zeros.clone(), zeros.clone(), zeros.clone()
        self.total = torch.zeros(dim, dtype=torch.float64, device=device)
        self.squares = torch.zeros(dim, dtype=torch.float64, device=device)

    def add(self, rows: torch.Tensor, rebuilt: torch.Tensor, codes: torch.Tensor, loss: torch.Tensor) -> None:
        rows64 = rows.double()
        self.steps += 1
        self.rows += rows.shape[0]
        self.loss += loss.double()
        self.error += (rows64 - rebuilt.double()).square().sum()
        self.total += rows64.sum(dim=0)
        self.squares += rows64.square().sum(dim=0)
        self.active += (codes != 0).sum()

    def result(self, dead: torch.Tensor) -> dict[str, Any]:
        variance = (self.squares - self.total.square() / self.rows).sum()
        return {
            "loss": float(self.loss / self.steps),
            "explained_variance": float(1 - self.error / variance.clamp_min(1e-300)),
            "l0": float(self.active / self.rows),
            "dead_fraction": float(dead.double().mean()),
        }
