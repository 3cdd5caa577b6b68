"""Running a model for an explanation: eval mode restored afterwards, rows in even chunks, argument checks.

Shared by attribution, concepts and evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral
from typing import Any

import torch
from tqdm.auto import tqdm

from interpreto.model.sample import Sample


def row_batches(
    n_rows: int, length: int, batch_size: int, max_batch_tokens: int | None = None, progress: bool = False
) -> Iterator[slice]:
    """Slices of at most `batch_size` rows of `length` tokens, fewer when rows x length would pass
    `max_batch_tokens`; a progress bar when there are several and `progress` is on."""
    size = batch_size
    if max_batch_tokens is not None:
        size = max(1, min(size, max_batch_tokens // max(length, 1)))
    size = -(-n_rows // -(-n_rows // size)) if n_rows else size  # as many chunks, evened out
    starts = range(0, n_rows, size)
    for start in tqdm(starts, desc="batches", leave=False, disable=not (progress and len(starts) > 1)):
        yield slice(start, min(start + size, n_rows))


def check_integer(name: str, value: Any, minimum: int = 1, allow_none: bool = False) -> None:
    """Raises a `ValueError` naming the argument unless `value` is an integer >= `minimum` (or None if allowed)."""
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        bound = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        raise ValueError(f"{name} must be {'None or ' if allow_none else ''}{bound}, got {value!r}.")


def element_matrix(sample: Sample) -> torch.Tensor:
    """`(seq, n_elements)` float matrix: 1 where a token position belongs to an element."""
    matrix = torch.zeros(sample.input_ids.numel(), sample.n_elements)
    for element, positions in enumerate(sample.elements.token_groups):
        matrix[positions, element] = 1.0
    return matrix


@contextmanager
def explaining(model, device):
    """Runs the model in eval mode (no dropout), on `device` if given; restores every module's mode and the
    model's device afterwards, also when the call raised."""
    if not isinstance(model, torch.nn.Module):  # a RemoteScorer: nothing to put in eval mode or move
        yield
        return
    modes = [(module, module.training) for module in model.modules()]
    original = model.get_input_embeddings().weight.device
    move = (
        device is not None and torch.device(device) != original and not getattr(model, "hf_device_map", None)
    )
    try:
        model.eval()
        if move:
            model.to(device)
        yield
    finally:
        if move:
            model.to(original)
        for module, training in modes:
            module.training = training
