"""Tokenization helpers that never change the user's tokenizer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel


@dataclass
class Encoding:
    """A tokenized text: ids, character offsets, and which tokens are text (not special)."""

    input_ids: list[int]
    offsets: list[tuple[int, int]]
    is_text: list[bool]
    tokens: list[str]
    token_type_ids: list[int] | None = None
    sequence_ids: list[int | None] | None = None  # for a pair: 0 or 1 per token, None for special tokens


def check_model_and_tokenizer(model, tokenizer) -> None:
    """Raises a clear error when the model or tokenizer cannot be explained together."""
    if not isinstance(model, PreTrainedModel):
        raise TypeError(
            f"model must be a Hugging Face PreTrainedModel (e.g. AutoModelForSequenceClassification or "
            f"AutoModelForCausalLM), got {type(model).__name__}."
        )
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"tokenizer must be a fast tokenizer (character offsets are needed for words and sentences), "
            f"got {type(tokenizer).__name__}: load it with AutoTokenizer.from_pretrained(..., use_fast=True)."
        )
    n_embeddings = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > n_embeddings:
        raise ValueError(
            f"tokenizer has {len(tokenizer)} tokens but the model embeds only {n_embeddings}: "
            f"pass the tokenizer this model was trained with."
        )


def replacement_token_id(tokenizer, override: int | None = None) -> int:
    """The token that stands for a removed element (perturbations, baselines, evaluation metrics).

    `override` if given; else the tokenizer's mask token (what masked-LM encoders such as BERT learned as
    "a word is missing here"); else a single space, when the tokenizer encodes `" "` as one text token (byte-level
    BPE and SentencePiece tokenizers of causal LMs); else the unknown, then the pad token, when neither is the
    end-of-sequence nor the beginning-of-sequence token. End-of-sequence and end-of-turn tokens are never
    chosen: on SmolLM2 (whose pad token is `<|im_end|>`) occluding ' is' before ' Paris' with it moved the
    log-probability by 25.5 nats, measuring "end of turn inserted" rather than the word's role; with a space,
    ' France' ranks first (8.1 nats) and ' is' third (5.4).

    Raises:
        ValueError: no such token exists: pass `replace_token_id=` to the explainer.
    """
    if override is not None:
        return int(override)
    if getattr(tokenizer, "mask_token_id", None) is not None:
        return int(tokenizer.mask_token_id)
    space = neutral_space_id(tokenizer)
    if space is not None:
        return space
    ends = {getattr(tokenizer, "eos_token_id", None), getattr(tokenizer, "bos_token_id", None)}
    for name in ("unk_token_id", "pad_token_id"):
        token_id = getattr(tokenizer, name, None)
        if token_id is not None and token_id not in ends:
            return int(token_id)
    raise ValueError(
        "the tokenizer has no mask token, no single-token space, and no unknown or pad token other than its "
        "end/beginning-of-sequence tokens to replace removed elements with: pass replace_token_id= to the "
        "explainer."
    )


def neutral_space_id(tokenizer) -> int | None:
    """The id of `" "` when the tokenizer encodes it as exactly one token that is not special, else None."""
    try:
        ids = tokenizer(" ", add_special_tokens=False)["input_ids"]
    except (TypeError, ValueError):
        return None
    if len(ids) != 1 or ids[0] in set(tokenizer.all_special_ids):
        return None
    return int(ids[0])


def encode(
    tokenizer,
    text: str,
    *,
    add_special_tokens: bool,
    content_spans: list[tuple[int, int]] | None = None,
    max_length: int | None = None,
    text_pair: str | None = None,
) -> Encoding:
    """Tokenizes `text` once with offsets.

    Args:
        tokenizer: a fast tokenizer (left unchanged).
        text: the text to tokenize.
        add_special_tokens: whether the tokenizer adds its special tokens (BOS, [CLS], [SEP]).
        content_spans: character spans that hold the user's text; tokens outside them (chat-template markup)
            count as special. None means the whole text is content.
        max_length: truncate to this many tokens (the tokenizer's own truncation); None keeps every token.
        text_pair: a second text, joined to `text` the model's way (the tokenizer's pair encoding, e.g.
            `[CLS] text [SEP] text_pair [SEP]` with `token_type_ids`); its offsets refer to `text_pair`.
    """
    encoded = tokenizer(
        text,
        text_pair,
        add_special_tokens=add_special_tokens,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        truncation=max_length is not None,
        max_length=max_length,
    )
    special_ids = set(tokenizer.all_special_ids)
    is_text = [
        not special and token_id not in special_ids
        for token_id, special in zip(encoded["input_ids"], encoded["special_tokens_mask"], strict=True)
    ]
    offsets = [tuple(span) for span in encoded["offset_mapping"]]
    if content_spans is not None:
        is_text = [
            keep and any(s <= start and end <= e for s, e in content_spans)
            for keep, (start, end) in zip(is_text, offsets, strict=True)
        ]
    return Encoding(
        input_ids=list(encoded["input_ids"]),
        offsets=offsets,
        is_text=is_text,
        tokens=tokenizer.convert_ids_to_tokens(encoded["input_ids"]),
        token_type_ids=encoded.get("token_type_ids"),
        sequence_ids=encoded.sequence_ids() if text_pair is not None else None,
    )


def check_length(n_tokens: int, limit: int | None, argument: str = "inputs") -> None:
    """Raises when a sequence is longer than the model allows."""
    if limit is not None and n_tokens > limit:
        raise ValueError(
            f"{argument} has {n_tokens} tokens but the model takes at most {limit}: shorten it or pass "
            f"truncation=True to the explainer."
        )


def as_id_tensor(ids: list[int]) -> torch.Tensor:
    """A 1-D long tensor of token ids."""
    return torch.tensor(ids, dtype=torch.long)
