"""The activations concepts are learned on: in memory, or streamed from the shard folder of `get_activations`.

`ActivationData` gives the same view of both: the number of rows and their dimension (read from the shards'
headers, without loading them), every row at once (`tensor()`, with a clear error naming the size when that would
not fit the memory cap), or shuffled minibatches (`batches()`). Streaming reads one shard at a time: each epoch
visits the shards in a random order and the rows of each shard in a random order, so the memory used is one shard
(`shard_rows` x hidden floats) plus one minibatch, whatever the dataset's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from interpreto.model.activations import Activations

ActivationSource = Activations | dict | torch.Tensor | str | Path
"""What `fit` accepts: `Activations`, the `{split_point: Activations}` of `get_activations`, a `(rows, hidden)`
tensor, or the `save_dir` folder `get_activations(..., save_dir=...)` wrote."""

GIB = 2**30
# `tensor()` refuses to gather more than this many bytes of shards into memory unless told otherwise
DEFAULT_MAX_BYTES = 4 * GIB


class ActivationData:
    """Rows of one split point, in memory or in shard files.

    Args:
        source: an `ActivationSource`.
        split_point: the split point (module path) to read from a dict or a shard folder; None takes the only
            one there is.

    Raises:
        ValueError: the source holds several split points and `split_point` is None, or not the one asked for.
        TypeError: the source is none of the accepted kinds.
    """

    def __init__(self, source: ActivationSource, split_point: str | None = None):
        self.split_point = split_point
        self._rows: torch.Tensor | None = None
        self._shards: list[Path] = []
        if isinstance(source, dict):
            source = _pick(source, split_point)
        if isinstance(source, Activations):
            self.split_point = source.split_point
            source = source.activations
        if isinstance(source, torch.Tensor):
            if source.dim() != 2 or source.shape[0] == 0:
                raise ValueError(
                    f"activations must be a non-empty (rows, hidden) tensor, got shape {tuple(source.shape)}."
                )
            self._rows = source.detach().float()
        elif isinstance(source, (str, Path)):
            self._shards = _shard_paths(Path(source), split_point)
            self.split_point = _shard_split_point(self._shards[0])
        else:
            raise TypeError(
                f"activations must be Activations, the dict of get_activations, a (rows, hidden) tensor or a "
                f"shard folder, got {type(source).__name__}."
            )
        self.n_rows, self.dim = self._shape()

    @property
    def in_memory(self) -> bool:
        """True when the rows are a tensor, False when they are streamed from shards."""
        return self._rows is not None

    @property
    def n_bytes(self) -> int:
        """The float32 size of all rows."""
        return self.n_rows * self.dim * 4

    def tensor(self, max_bytes: int | None = DEFAULT_MAX_BYTES, method: str = "this method") -> torch.Tensor:
        """Every row `(n_rows, dim)`, float32. Shards are gathered only when they take at most `max_bytes`.

        Raises:
            MemoryError: the shards are larger than `max_bytes`; the message names the size and the fix.
        """
        if self._rows is not None:
            return self._rows
        if max_bytes is not None and self.n_bytes > max_bytes:
            raise MemoryError(
                f"{method} fits in memory: the shards hold {self.n_rows} rows x {self.dim} = "
                f"{_size(self.n_bytes)}, above the {_size(max_bytes)} cap. Fit on a subset "
                f"(e.g. load_activations on fewer shards), raise max_bytes=, or use a streaming method (SAEs, "
                f"PCAConcepts, KMeansConcepts)."
            )
        return torch.cat([_read(path) for path in self._shards])

    def batches(
        self, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = True
    ) -> Iterator[torch.Tensor]:
        """Minibatches `(<= batch_size, dim)` covering every row once: shards in a random order, rows of each
        shard in a random order (`generator` makes it reproducible); in order when `shuffle` is False."""
        if self._rows is not None:
            yield from _shuffled_batches(self._rows, batch_size, generator, shuffle)
            return
        order = (
            torch.randperm(len(self._shards), generator=generator) if shuffle else range(len(self._shards))
        )
        for k in order:
            yield from _shuffled_batches(_read(self._shards[int(k)]), batch_size, generator, shuffle)

    def n_batches(self, batch_size: int) -> int:
        """How many minibatches `batches(batch_size)` yields."""
        if self._rows is not None:
            return -(-self.n_rows // batch_size)
        return sum(-(-_n_rows(path) // batch_size) for path in self._shards)

    def _shape(self) -> tuple[int, int]:
        if self._rows is not None:
            return self._rows.shape[0], self._rows.shape[1]
        from safetensors import safe_open

        n_rows, dim = 0, None
        for path in self._shards:
            with safe_open(str(path), framework="pt") as handle:
                rows, width = handle.get_slice("activations").get_shape()
            n_rows += rows
            dim = width
        return n_rows, int(dim)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / GIB:.2f} GiB" if n_bytes >= GIB // 10 else f"{n_bytes / 2**20:.1f} MiB"


def _pick(activations: dict, split_point: str | None) -> Activations:
    if split_point is not None:
        if split_point not in activations:
            raise ValueError(
                f"split_point={split_point!r} is not among the activations' split points {sorted(activations)}."
            )
        return activations[split_point]
    if len(activations) != 1:
        raise ValueError(
            f"the activations hold several split points {sorted(activations)}: pass split_point= to choose one."
        )
    return next(iter(activations.values()))


def _shard_paths(folder: Path, split_point: str | None) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(
            f"activations: {folder} is not a folder of activation shards: write one with "
            f"ModelWithSplitPoints.get_activations(..., save_dir=...)."
        )
    folders = sorted(p for p in folder.iterdir() if p.is_dir() and any(p.glob("shard_*.safetensors")))
    if any(folder.glob("shard_*.safetensors")):
        folders = [folder]
    if split_point is not None:
        folders = [
            p for p in folders if _shard_split_point(next(p.glob("shard_*.safetensors"))) == split_point
        ]
    if not folders:
        raise FileNotFoundError(
            f"activations: {folder} holds no shards"
            + (f" of split point {split_point!r}" if split_point else "")
            + ": write them with ModelWithSplitPoints.get_activations(..., save_dir=...)."
        )
    if len(folders) > 1:
        names = [_shard_split_point(next(p.glob("shard_*.safetensors"))) for p in folders]
        raise ValueError(f"{folder} holds shards of several split points {names}: pass split_point=.")
    return sorted(folders[0].glob("shard_*.safetensors"))


def _shard_split_point(path: Path) -> str:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()["split_point"]


def _n_rows(path: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.get_slice("activations").get_shape()[0]


def _read(path: Path) -> torch.Tensor:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.get_tensor("activations").float()


def _shuffled_batches(
    rows: torch.Tensor, batch_size: int, generator: torch.Generator | None, shuffle: bool
) -> Iterator[torch.Tensor]:
    order = torch.randperm(rows.shape[0], generator=generator) if shuffle else None
    for start in range(0, rows.shape[0], batch_size):
        yield rows[start : start + batch_size] if order is None else rows[order[start : start + batch_size]]
