"""Seeded fine-tuning and accuracy of sequence classifiers on CPU, shared by the trained zoo models."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@contextlib.contextmanager
def torch_threads(n_threads: int) -> Iterator[None]:
    """Run the block with ``n_threads`` intra-op CPU threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fine_tune_classifier(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    targets: torch.Tensor,
    *,
    n_epochs: int,
    batch_size: int,
    learning_rate: float,
    max_length: int,
    seed: int,
) -> PreTrainedModel:
    """Train ``model`` in place with AdamW and cross-entropy on shuffled mini-batches; return it in eval mode.

    ``targets`` holds one class id per text, or one row of class probabilities per text (soft
    targets, which the model's own ``labels`` loss does not accept without changing its config).

    Batch order comes from ``random.Random(seed)`` and dropout from ``torch.manual_seed(seed)``
    inside a forked random state, so the result depends only on the arguments.
    """
    order_rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(n_epochs):
            order = list(range(len(texts)))
            order_rng.shuffle(order)
            for start in range(0, len(order), batch_size):
                batch_ids = order[start : start + batch_size]
                inputs = tokenizer(
                    [texts[i] for i in batch_ids],
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_tensors="pt",
                )
                loss = F.cross_entropy(model(**inputs).logits, targets[batch_ids])
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
    return model.eval()


@torch.no_grad()
def classification_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    max_length: int,
    batch_size: int = 64,
) -> float:
    """Return the fraction of ``texts`` whose arg-max prediction equals the label."""
    model.eval()
    n_correct = 0
    for start in range(0, len(texts), batch_size):
        inputs = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        predictions = model(**inputs).logits.argmax(dim=-1)
        n_correct += int((predictions == torch.tensor(labels[start : start + batch_size])).sum())
    return n_correct / len(texts)
