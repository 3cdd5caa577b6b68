"""One layer of a model, read or replaced during ordinary forward passes.

A plain `register_forward_hook` on the layer's module (and a pre-hook on the model that counts the module's
calls per forward pass, for modules that run several times, as ALBERT's shared layers) edits the hidden states
the layer outputs. Both hooks live only inside `Layer.edited`, which removes them on exit, also when the forward
pass raised: the user's model keeps no hook. Faster than an nnsight trace, and gradients flow through the edit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from interpreto.model._architectures import SplitPoint, resolve_split_points
from interpreto.model._tracing import first_tensor, replace_first


@dataclass(frozen=True)
class Layer:
    """A resolved split point of `model`: the module (and which call of it) whose output hidden states are read
    or replaced."""

    model: nn.Module
    point: SplitPoint

    @property
    def name(self) -> str:
        """The split point's key (its module path, `#k` for the `k`-th call of a shared module)."""
        return self.point.name

    @contextmanager
    def edited(self, edit: Callable[[torch.Tensor], torch.Tensor | None]) -> Iterator[None]:
        """Within the block, every forward pass of the model calls `edit` on the hidden states the layer outputs
        and goes on with what it returns (None: unchanged). The hooks are removed on exit, also on error."""
        module = self.model.get_submodule(self.point.path)
        calls = [0]

        def reset(*_: Any) -> None:
            calls[0] = 0

        def hook(_module: nn.Module, _args: Any, output: Any) -> Any:
            calls[0] += 1
            if calls[0] - 1 != self.point.occurrence:
                return None
            hidden = edit(first_tensor(output))
            return None if hidden is None else replace_first(output, hidden)

        handles = [self.model.register_forward_pre_hook(reset), module.register_forward_hook(hook)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @contextmanager
    def replaced(self, hidden: torch.Tensor) -> Iterator[None]:
        """Within the block, the layer outputs `hidden` (same shape as its own output) instead of its own."""

        def replace(original: torch.Tensor) -> torch.Tensor:
            if hidden.shape != original.shape:
                raise ValueError(
                    f"activations of shape {tuple(hidden.shape)} cannot replace the output of {self.name}, "
                    f"of shape {tuple(original.shape)}."
                )
            return hidden.to(original.device, original.dtype)

        with self.edited(replace):
            yield

    def outputs(self, run: Callable[[], Any]) -> torch.Tensor:
        """The hidden states the layer outputs while `run()` calls the model (detached)."""
        seen: list[torch.Tensor] = []
        with self.edited(lambda hidden: seen.append(hidden.detach())):
            run()
        if not seen:
            raise ValueError(f"split_point: the module {self.name} did not run in the model's forward pass.")
        return seen[0]


def model_layer(model: nn.Module, split_point: int | str) -> Layer:
    """Resolves one split point (a block index or a dotted module path) of `model`.

    Raises:
        ValueError: naming `split_point`, for a list, an unknown path or an out-of-range index.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"split_point={split_point!r}: layer attribution reads hidden states, which needs a local torch "
            f"model, not a {type(model).__name__}."
        )
    if isinstance(split_point, bool) or not isinstance(split_point, (int, str)):
        raise ValueError(
            f"split_point={split_point!r}: pass one block index (e.g. 1) or one dotted module path "
            f"(e.g. 'bert.encoder.layer.1'), or None for the input embeddings."
        )
    try:
        (point,) = resolve_split_points(model, split_point)
    except (ValueError, TypeError) as error:
        reason = str(error).removeprefix("split_points: ")
        raise ValueError(f"split_point={split_point!r}: {reason}") from None
    return Layer(model, point)
