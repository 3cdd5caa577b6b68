"""Activations at a split point: one row per element (token, word, sentence, sample), and their shard files.

An element's activation is its token's hidden state for `TOKEN`/`ALL_TOKENS`/`CLS_TOKEN`, and the pooling
(`"mean"`, `"max"` or `"last"`) of its tokens' hidden states for `WORD`, `SENTENCE` and `SAMPLE`. Padding never
makes a row. Words and sentences come from `interpreto.model.granularity.group_tokens`, as for attributions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal

import torch

from interpreto.model.granularity import Granularity, group_tokens

Pooling = Literal["mean", "max", "last"]
POOLINGS = ("mean", "max", "last")


class ActivationGranularity(str, Enum):
    """The unit that gets one activation row.

    Attributes:
        ALL_TOKENS: every token, special tokens included (padding excluded).
        TOKEN: every token of the text, special tokens excluded.
        WORD: words and punctuation runs, their tokens pooled.
        SENTENCE: sentences, their tokens pooled.
        CLS_TOKEN: the first token of each input (`[CLS]` for BERT-like models).
        SAMPLE: one row per input, all its tokens (special ones included) pooled.

    Examples:
        >>> from interpreto import ActivationGranularity
        >>> ActivationGranularity("word") is ActivationGranularity.WORD
        True
    """

    ALL_TOKENS = "all_tokens"
    TOKEN = "token"
    WORD = "word"
    SENTENCE = "sentence"
    CLS_TOKEN = "cls_token"
    SAMPLE = "sample"


@dataclass
class Activations:
    """Activations of one split point, one row per element.

    Attributes:
        activations: float32 tensor `(rows, hidden)`, on CPU.
        index: for each row, `(input index, element index, element text)`.
        split_point: the split point (module path) they were read at.
        granularity: the unit of a row.

    Examples:
        >>> import torch
        >>> acts = Activations(torch.zeros(2, 4), [(0, 0, "a"), (1, 0, "b")], "encoder.layer.0", "token")
        >>> acts.for_input(1).index
        [(1, 0, 'b')]
    """

    activations: torch.Tensor
    index: list[tuple[int, int, str]]
    split_point: str
    granularity: ActivationGranularity | str

    def __len__(self) -> int:
        return len(self.index)

    @property
    def input_indices(self) -> torch.Tensor:
        """The input index of each row, shape `(rows,)`."""
        return torch.tensor([row[0] for row in self.index], dtype=torch.long)

    def for_input(self, input_index: int) -> Activations:
        """The rows of one input."""
        rows = [k for k, row in enumerate(self.index) if row[0] == input_index]
        return Activations(
            self.activations[rows], [self.index[k] for k in rows], self.split_point, self.granularity
        )


def check_pooling(pooling: str) -> None:
    """Raises a `ValueError` naming `pooling` when it is unknown."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r} is unknown: use one of {list(POOLINGS)}.")


def pool(hidden: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pools `(n_tokens, hidden)` into `(hidden,)`."""
    if pooling == "mean":
        return hidden.mean(dim=0)
    if pooling == "max":
        return hidden.amax(dim=0)
    return hidden[-1]


@dataclass
class TokenizedText:
    """One input as the model sees it: its text, tokens, character offsets and which tokens are text."""

    text: str
    tokens: list[str]
    offsets: list[tuple[int, int]]
    is_text: list[bool]


def element_rows(
    hidden: torch.Tensor, sample: TokenizedText, granularity: ActivationGranularity, pooling: str
) -> tuple[torch.Tensor, list[str]]:
    """Rows and labels of one input from its unpadded hidden states `(n_tokens, hidden)`."""
    if granularity is ActivationGranularity.CLS_TOKEN:
        return hidden[:1], sample.tokens[:1]
    if granularity is ActivationGranularity.SAMPLE:
        return pool(hidden, pooling)[None], [sample.text]
    elements = group_tokens(
        sample.text, sample.tokens, sample.offsets, sample.is_text, Granularity(granularity.value)
    )
    if granularity in (ActivationGranularity.ALL_TOKENS, ActivationGranularity.TOKEN):
        positions = [group[0] for group in elements.token_groups]
        return hidden[positions], elements.labels
    if not elements.token_groups:
        return hidden[:0], []
    rows = torch.stack([pool(hidden[group], pooling) for group in elements.token_groups])
    return rows, elements.labels


def batch_rows(
    states: torch.Tensor,
    samples: list[TokenizedText],
    lengths: list[int],
    offset: int,
    granularity: ActivationGranularity,
    pooling: str,
) -> tuple[torch.Tensor, list[tuple[int, int, str]]]:
    """Rows and index of one batch; `offset` is the batch's first input index."""
    if granularity is ActivationGranularity.ALL_TOKENS:  # fast path: no grouping needed
        rows = torch.cat([states[k, :length] for k, length in enumerate(lengths)])
        index = [
            (offset + k, j, sample.text[s:e] if e > s else token)
            for k, sample in enumerate(samples)
            for j, (token, (s, e)) in enumerate(zip(sample.tokens, sample.offsets, strict=True))
        ]
        return rows, index
    parts, index = [], []
    for k, (sample, length) in enumerate(zip(samples, lengths, strict=True)):
        rows, labels = element_rows(states[k, :length], sample, granularity, pooling)
        parts.append(rows)
        index += [(offset + k, j, label) for j, label in enumerate(labels)]
    return torch.cat(parts), index


def merge_rows(
    name: str, parts: list[tuple[torch.Tensor, list]], granularity: ActivationGranularity
) -> Activations:
    hidden = parts[0][0].shape[-1] if parts else 0
    activations = torch.cat([part[0] for part in parts]) if parts else torch.zeros(0, hidden)
    return Activations(activations, [row for part in parts for row in part[1]], name, granularity)


# Shards: one safetensors file per split point and chunk of rows, with the index as a tensor and the element
# texts as JSON metadata, so a dataset never has to fit in memory.


def _folder_name(split_point: str) -> str:
    return split_point.replace("#", "_call")


def save_shard(save_dir: Path, shard: int, activations: Activations) -> Path:
    """Writes one shard of one split point and returns its path."""
    from safetensors.torch import save_file

    folder = Path(save_dir) / _folder_name(activations.split_point)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"shard_{shard:05d}.safetensors"
    index = torch.tensor([row[:2] for row in activations.index], dtype=torch.long).reshape(-1, 2)
    metadata = {
        "split_point": activations.split_point,
        "granularity": ActivationGranularity(activations.granularity).value,
        "labels": json.dumps([row[2] for row in activations.index]),
    }
    tensors = {"activations": activations.activations.contiguous(), "index": index}
    save_file(tensors, str(path), metadata=metadata)
    return path


def iter_activation_shards(save_dir: str | Path, split_point: str | None = None) -> Iterator[Activations]:
    """Reads shards written by `get_activations(..., save_dir=...)` one at a time, in order.

    Args:
        save_dir: the folder given as `save_dir`.
        split_point: only this split point's shards; None reads all of them.
    """
    from safetensors import safe_open

    root = Path(save_dir)
    folders = (
        [root / _folder_name(split_point)] if split_point else sorted(p for p in root.iterdir() if p.is_dir())
    )
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"save_dir {root} holds no shards for split point {split_point!r}.")
        for path in sorted(folder.glob("shard_*.safetensors")):
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata()
                index = handle.get_tensor("index").tolist()
                labels = json.loads(metadata["labels"])
                yield Activations(
                    activations=handle.get_tensor("activations"),
                    index=[(i, j, label) for (i, j), label in zip(index, labels, strict=True)],
                    split_point=metadata["split_point"],
                    granularity=ActivationGranularity(metadata["granularity"]),
                )


def load_activations(save_dir: str | Path) -> dict[str, Activations]:
    """Loads every shard under `save_dir` back into one `Activations` per split point.

    Examples:
        >>> import tempfile
        >>> from interpreto import ModelWithSplitPoints
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> splitter = ModelWithSplitPoints(tiny_bert_classifier()[0], split_points=1,
        ...                                 tokenizer=tiny_bert_classifier()[1], progress=False)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = splitter.get_activations(["a good movie"], save_dir=folder)
        ...     loaded = load_activations(folder)
        >>> loaded["bert.encoder.layer.1"].activations.shape
        torch.Size([3, 32])
    """
    parts: dict[str, list[Activations]] = {}
    for shard in iter_activation_shards(save_dir):
        parts.setdefault(shard.split_point, []).append(shard)
    return {
        name: Activations(
            activations=torch.cat([shard.activations for shard in shards]),
            index=[row for shard in shards for row in shard.index],
            split_point=name,
            granularity=shards[0].granularity,
        )
        for name, shards in parts.items()
    }
