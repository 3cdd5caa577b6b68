"""Shared helpers of the planted-truth explainer tests: seeded one-thread training and filler sentences."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch

from interpreto.zoo.planted import FILLER_WORDS


def _train(model, loss_of_batch: Callable[[random.Random], torch.Tensor], steps: int, lr: float, seed: int):
    """AdamW for `steps` batches drawn by `loss_of_batch(rng)`, on one thread in a forked random state."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    rng = random.Random(seed)
    previous = torch.get_num_threads()
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.set_num_threads(1)
        torch.manual_seed(seed)
        try:
            for _ in range(steps):
                loss_of_batch(rng).backward()
                optimizer.step()
                optimizer.zero_grad()
        finally:
            torch.set_num_threads(previous)
    return model.eval()


def _fillers(
    rng: random.Random, low: int = 4, high: int = 9, pool: Sequence[str] = FILLER_WORDS
) -> list[str]:
    return [rng.choice(pool) for _ in range(rng.randint(low, high))]


def _top(scores: list[tuple[str, float]]) -> int:
    return max(range(len(scores)), key=lambda i: scores[i][1])
