"""Texts to model inputs for `ModelWithSplitPoints`: per-text encodings and one right-padded batch.

Right padding is used whatever the tokenizer's padding side, and a missing pad token is not added to the
tokenizer (any id will do under a zero attention mask): no architecture's positions depend on right padding, so a
text's activations are the same alone or in any batch, and the user's tokenizer is never modified.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from interpreto.model.activations import TokenizedText

Inputs = str | list[str]
# Above this, `tokenizer.model_max_length` is transformers' "no limit" placeholder.
_NO_LIMIT = 1_000_000


def texts_of(inputs: Inputs) -> list[str]:
    """`inputs` as a non-empty list of texts; a `TypeError` naming `inputs` otherwise."""
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    if not texts or not all(isinstance(text, str) for text in texts):
        raise TypeError("inputs must be a text or a non-empty list of texts.")
    return texts


def length_limit(tokenizer: Any, model: torch.nn.Module, max_length: int | None) -> int | None:
    """`max_length` if given, else the tokenizer's `model_max_length`, else the model's `max_position_embeddings`."""
    if max_length is not None:
        return max_length
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit < _NO_LIMIT:
        return int(limit)
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


def encode_texts(
    tokenizer: Any,
    inputs: Inputs,
    max_length: int | None,
    truncation: bool,
    model: torch.nn.Module,
    device: torch.device,
) -> tuple[list[TokenizedText], dict[str, torch.Tensor]]:
    """Per-text encodings (tokens, offsets, which positions are text) and the right-padded batch on `device`,
    with only the arguments `model.forward` accepts.

    Raises:
        ValueError: naming `inputs`, for a text longer than the limit when `truncation` is False.
    """
    texts = texts_of(inputs)
    limit = length_limit(tokenizer, model, max_length)
    encoded = tokenizer(
        texts,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        truncation=truncation,
        max_length=limit if truncation else None,
    )
    special_ids = set(tokenizer.all_special_ids)
    samples = []
    for k, (text, ids) in enumerate(zip(texts, encoded["input_ids"], strict=True)):
        if limit is not None and len(ids) > limit:
            raise ValueError(
                f"inputs[{k}] has {len(ids)} tokens but max_length is {limit}: shorten it, or pass "
                f"truncation=True (or a larger max_length) to ModelWithSplitPoints."
            )
        special = encoded["special_tokens_mask"][k]
        samples.append(
            TokenizedText(
                text=text,
                tokens=tokenizer.convert_ids_to_tokens(ids),
                offsets=[tuple(span) for span in encoded["offset_mapping"][k]],
                is_text=[not s and i not in special_ids for i, s in zip(ids, special, strict=True)],
            )
        )
    return samples, right_padded(tokenizer, encoded, model, device)


def right_padded(
    tokenizer: Any, encoded: Any, model: torch.nn.Module, device: torch.device
) -> dict[str, torch.Tensor]:
    """Right-pads the encodings into tensors on `device`, keeping only what `model.forward` accepts."""
    pad_id = tokenizer.pad_token_id
    if pad_id is None:  # GPT-2 style: any id will do under a zero attention mask
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    lengths = [len(ids) for ids in encoded["input_ids"]]
    width = max(lengths)
    accepted = set(inspect.signature(type(model).forward).parameters)
    batch = {}
    for key, fill in (("input_ids", pad_id), ("token_type_ids", 0)):
        if key in encoded and key in accepted:
            rows = [list(row) + [fill] * (width - len(row)) for row in encoded[key]]
            batch[key] = torch.tensor(rows, dtype=torch.long, device=device)
    positions = torch.arange(width, device=device)
    batch["attention_mask"] = (positions[None] < torch.tensor(lengths, device=device)[:, None]).long()
    return batch
