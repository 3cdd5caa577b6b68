"""`ModelWithSplitPoints`: read, replace or edit a language model's hidden states at any layer, with nnsight.

The class holds the user's model (a torch module, or a Hugging Face id to load) and, for the duration of each
call, an `nnsight.NNsight` wrapper around it. The wrapper is removed when the call returns (nnsight leaves a
controller `forward` on every module it wraps), so the user's model is exactly as before: no hook, no attribute,
no mode or `requires_grad` change, no token added, the tokenizer untouched. Inputs are tokenized one text at a
time and right-padded here, which no architecture's positions depend on, so a sample's activations are the same
alone or in any padded batch, whatever the tokenizer's padding side and whether it has a pad token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nnsight
import torch
from tqdm.auto import tqdm

from interpreto.model._architectures import resolve_split_points
from interpreto.model._encoding import Inputs, encode_texts, texts_of
from interpreto.model._tracing import first_tensor, module_output, replace_first, wrapped
from interpreto.model.activations import (
    ActivationGranularity,
    Activations,
    TokenizedText,
    batch_rows,
    check_pooling,
    merge_rows,
    save_shard,
)
from interpreto.model.layer import Layer


class ModelWithSplitPoints:
    """A language model split at one or more layers: get activations there, run the rest from edited ones.

    Args:
        model_or_path: a torch / Hugging Face model (never modified), a Hugging Face id or folder (loaded with
            `AutoModel.from_pretrained` and `AutoTokenizer.from_pretrained`; pass `automodel=` to pick the
            class, e.g. `AutoModelForCausalLM`), or an nnsight wrapper (`nnsight.NNsight`, `TransformersModel`)
            used as is (needed for `remote=True`).
        split_points: where to split: a block index (the output of that transformer block, e.g. `3` resolves to
            `bert.encoder.layer.3`, `transformer.h.3` or `model.layers.3`; negative counts from the end), a
            dotted module path (`"bert.encoder.layer.3.attention"`), or a list of them.
        tokenizer: the model's fast tokenizer (never modified); loaded from `model_or_path` when it is a path.
        device: where to run; None runs where the model is. A model moved for a call is moved back; sharded
            models (`device_map=...`) are never moved.
        batch_size: inputs per forward pass.
        max_length: the most tokens an input may have; None uses the tokenizer's `model_max_length` (or the
            model's `max_position_embeddings`).
        truncation: cut inputs longer than `max_length`; when False such an input raises a `ValueError`.
        progress: show a tqdm progress bar over batches.
        remote: passed to nnsight's `trace(remote=...)` to run on NDIF; needs `model_or_path` to be an nnsight
            model that supports it (e.g. `nnsight.TransformersModel`).
        automodel: the `transformers` auto class used when `model_or_path` is a path.

    Examples:
        >>> from interpreto import ModelWithSplitPoints
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> splitter = ModelWithSplitPoints(model, split_points=[0, 1], tokenizer=tokenizer, progress=False)
        >>> splitter.split_points
        ['bert.encoder.layer.0', 'bert.encoder.layer.1']
        >>> acts = splitter.get_activations(["a good movie", "bad"], granularity="word")
        >>> acts["bert.encoder.layer.1"].activations.shape, acts["bert.encoder.layer.1"].index[:2]
        (torch.Size([4, 32]), [(0, 0, 'a'), (0, 1, 'good')])
    """

    def __init__(
        self,
        model_or_path: torch.nn.Module | str | Path,
        split_points: int | str | list[int | str],
        tokenizer: Any = None,
        device: torch.device | str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        truncation: bool = False,
        progress: bool = True,
        remote: bool | str = False,
        automodel: Any = None,
    ):
        self.wrapper: nnsight.NNsight | None = None
        if isinstance(model_or_path, (str, Path)):
            model_or_path, tokenizer = _load(model_or_path, tokenizer, automodel)
        elif isinstance(model_or_path, nnsight.Envoy):
            self.wrapper = model_or_path
            tokenizer = tokenizer if tokenizer is not None else getattr(model_or_path, "tokenizer", None)
            model_or_path = model_or_path._module
        if not isinstance(model_or_path, torch.nn.Module):
            raise TypeError(
                f"model_or_path must be a torch model, a Hugging Face id or an nnsight model, "
                f"got {type(model_or_path).__name__}."
            )
        if tokenizer is None or not getattr(tokenizer, "is_fast", False):
            raise TypeError(
                "tokenizer must be the model's fast tokenizer (offsets are needed for words and sentences): load "
                "it with AutoTokenizer.from_pretrained(..., use_fast=True)."
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.model = model_or_path
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self.truncation = truncation
        self.progress = progress
        self.remote = remote
        self._points = resolve_split_points(self.model, split_points)

    @property
    def split_points(self) -> list[str]:
        """The resolved split points (module paths), in the order the forward pass reaches them."""
        return [point.name for point in self._points]

    # ---- public API -------------------------------------------------------------------------------------------

    def get_activations(
        self,
        inputs: Inputs,
        granularity: ActivationGranularity | str = ActivationGranularity.TOKEN,
        pooling: str = "mean",
        save_dir: str | Path | None = None,
        shard_rows: int = 65_536,
        progress: bool | None = None,
    ) -> dict[str, Activations] | list[Path]:
        """Activations of every split point, one row per element, padding excluded.

        Runs in batches of `batch_size` under `torch.inference_mode()` and stops the forward pass after the last
        split point (nnsight's `tracer.stop()`), so the layers after it never run.

        Args:
            inputs: a text or a list of texts.
            granularity: the unit of a row (see `ActivationGranularity`); `"token"` by default.
            pooling: how `WORD`, `SENTENCE` and `SAMPLE` pool their tokens: `"mean"`, `"max"` or `"last"`.
            save_dir: stream the rows to safetensors shards in this folder instead of returning them (for
                datasets too large for memory); read them back with `load_activations(save_dir)` or
                `iter_activation_shards(save_dir)`.
            shard_rows: with `save_dir`, write a shard every time this many rows are collected.
            progress: show a progress bar; None uses the constructor's `progress`.

        Returns:
            `{split_point: Activations}`, or the shard paths written when `save_dir` is given.
        """
        granularity = _granularity(granularity)
        check_pooling(pooling)
        texts = texts_of(inputs)
        if save_dir is not None and any(Path(save_dir).glob("*/shard_*.safetensors")):
            raise FileExistsError(
                f"save_dir {save_dir} already holds activation shards: pass an empty folder."
            )
        collected: dict[str, list[tuple[torch.Tensor, list]]] = {point.name: [] for point in self._points}
        written: list[Path] = []
        n_shards = 0
        show = self.progress if progress is None else progress
        starts = range(0, len(texts), self.batch_size)
        with self._session() as wrapper, torch.inference_mode():
            for start in tqdm(starts, desc="activations", disable=not show or len(starts) < 2):
                samples, batch = self.tokenize(texts[start : start + self.batch_size])
                hidden = self._trace_activations(wrapper, batch)
                lengths = batch["attention_mask"].sum(dim=1).tolist()
                for name, states in hidden.items():
                    states = states.float().cpu()
                    collected[name].append(batch_rows(states, samples, lengths, start, granularity, pooling))
                if (
                    save_dir is not None
                    and sum(len(part[1]) for part in collected[self._points[0].name]) >= shard_rows
                ):
                    written += self._flush(collected, save_dir, n_shards, granularity)
                    n_shards += 1
        if save_dir is not None:
            return written + self._flush(collected, save_dir, n_shards, granularity)
        return {name: merge_rows(name, parts, granularity) for name, parts in collected.items()}

    def forward_from(
        self,
        split_point: int | str,
        activations: torch.Tensor | Activations,
        inputs: Inputs,
    ) -> Any:
        """Runs the rest of the model from (modified) activations at `split_point`.

        Gradients flow to `activations` (the call follows the caller's grad mode). The layers before the split
        point run as usual on `inputs` (for the masks, positions and caches later layers need); their output at
        the split point is then replaced.

        Args:
            split_point: a block index or module path (one of this object's split points or any other).
            activations: a `(batch, seq, hidden)` tensor laid out like `tokenize(inputs)` (right padding), or
                the `Activations` of `get_activations(inputs, granularity="all_tokens")`, rows possibly edited.
            inputs: the texts the activations come from.

        Returns:
            The model's output (e.g. a `SequenceClassifierOutput` with `.logits`).

        Examples:
            >>> from interpreto import ModelWithSplitPoints
            >>> from interpreto.zoo import tiny_bert_classifier
            >>> model, tokenizer = tiny_bert_classifier()
            >>> splitter = ModelWithSplitPoints(model, split_points=0, tokenizer=tokenizer, progress=False)
            >>> acts = splitter.get_activations("a good movie", granularity="all_tokens")
            >>> out = splitter.forward_from(0, acts["bert.encoder.layer.0"], "a good movie")
            >>> logits = model(**tokenizer("a good movie", return_tensors="pt")).logits
            >>> bool((out.logits - logits).abs().max() <= 1e-4 * logits.abs().max())
            True
        """
        if isinstance(activations, Activations):
            if ActivationGranularity(activations.granularity) is not ActivationGranularity.ALL_TOKENS:
                raise ValueError(
                    f"activations: forward_from needs one row per token, got granularity "
                    f"{activations.granularity!r}: use get_activations(..., granularity='all_tokens')."
                )
            rows = activations.activations

            def edit(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                replaced = hidden.clone()
                replaced[mask] = rows.to(hidden.device, hidden.dtype)
                return replaced
        else:

            def edit(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                if activations.shape != hidden.shape:
                    raise ValueError(
                        f"activations has shape {tuple(activations.shape)} but the model's hidden states at "
                        f"{split_point!r} have shape {tuple(hidden.shape)} for these inputs."
                    )
                return activations.to(hidden.device, hidden.dtype)

        return self._run_edited(inputs, split_point, edit)

    def intervene(
        self, inputs: Inputs, split_point: int | str, fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> Any:
        """Runs the model on `inputs`, editing the hidden states at `split_point` with `fn` on the way.

        Args:
            inputs: a text or a list of texts (one batch, right-padded as in `tokenize`).
            split_point: a block index or module path.
            fn: maps the `(batch, seq, hidden)` hidden states to new ones of the same shape. Gradients flow
                through it (the call follows the caller's grad mode).

        Returns:
            The model's output.

        Examples:
            >>> from interpreto import ModelWithSplitPoints
            >>> from interpreto.zoo import tiny_bert_classifier
            >>> model, tokenizer = tiny_bert_classifier()
            >>> splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
            >>> splitter.intervene("a good movie", 1, lambda hidden: 0 * hidden).logits.shape
            torch.Size([1, 2])
        """
        return self._run_edited(inputs, split_point, lambda hidden, mask: fn(hidden))

    def generate(
        self,
        inputs: Inputs,
        split_point: int | str | None = None,
        fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        **generate_kwargs: Any,
    ) -> torch.Tensor:
        """Runs `model.generate` on the prompts `inputs`, the hidden states at `split_point` edited by `fn` at
        every forward step (plain forward hooks, `Layer.edited`, removed on exit, also on error).

        The prompts are one batch, left-padded to the longest (`width` tokens; prompt `i`'s token `j` at column
        `width - len_i + j`; no pad token: EOS ids). With the KV cache `fn` gets the prompt pass `(batch, width,
        hidden)`, then each new token alone `(batch, 1, hidden)` (with `use_cache=False`, the whole sequence so
        far). Greedy unless `generate_kwargs` say otherwise; eval mode (restored after), `torch.inference_mode()`.

        Args:
            inputs: a text or a list of texts (tokenized as in `tokenize`).
            split_point: a block index or module path; None for this object's only split point.
            fn: maps the step's hidden states `(batch, seq_step, hidden)` to new ones; None edits nothing.
            **generate_kwargs: passed to `model.generate` (`max_new_tokens=`, `do_sample=`, ...).

        Returns:
            The new tokens `(batch, new_tokens)`, prompt excluded (a row that ended early is padded after its EOS).

        Examples:
            >>> from interpreto import ModelWithSplitPoints
            >>> from interpreto.zoo import tiny_gpt2
            >>> model, tokenizer = tiny_gpt2()
            >>> splitter = ModelWithSplitPoints(model, 1, tokenizer, progress=False)
            >>> splitter.generate(["The dog", "A cat runs"], fn=lambda hidden: 2 * hidden, max_new_tokens=3).shape
            torch.Size([2, 3])
        """
        if split_point is None and len(self._points) != 1:
            raise ValueError(f"split_point: the model is split at {self.split_points}: pass one of them.")
        point = self._points[0] if split_point is None else resolve_split_points(self.model, split_point)[0]
        _, batch = self.tokenize(inputs)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        width = ids.shape[1]
        order = (torch.arange(width, device=ids.device) - (width - mask.sum(1))[:, None]) % width
        ids, mask = ids.gather(1, order), mask.gather(1, order)  # left padding
        pad = next(i for i in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0) if i is not None)
        modes = [(module, module.training) for module in self.model.modules()]
        try:
            self.model.eval()
            with Layer(self.model, point).edited(fn or (lambda hidden: None)), torch.inference_mode():
                kwargs = {"do_sample": False, "pad_token_id": pad, **generate_kwargs}
                out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        finally:
            for module, training in modes:
                module.training = training
        return out[:, width:]

    def tokenize(self, inputs: Inputs) -> tuple[list[TokenizedText], dict[str, torch.Tensor]]:
        """Tokenizes `inputs` as every method here does: per-text encodings and the right-padded batch.

        Raises:
            ValueError: naming `inputs`, for a text longer than `max_length` when `truncation` is False.
        """
        return encode_texts(
            self.tokenizer,
            inputs,
            max_length=self.max_length,
            truncation=self.truncation,
            model=self.model,
            device=self._input_device(),
        )

    # ---- internals --------------------------------------------------------------------------------------------

    def _input_device(self) -> torch.device:
        embeddings = getattr(self.model, "get_input_embeddings", lambda: None)()
        if embeddings is not None:
            return embeddings.weight.device
        return next(self.model.parameters()).device

    def _trace_kwargs(self) -> dict[str, Any]:
        return {"remote": self.remote} if self.remote else {}

    def _trace_activations(self, wrapper: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Hidden states `(batch, seq, hidden)` of every split point, the forward pass stopped after the last."""
        saved: dict[str, torch.Tensor] = {}
        envoys = [(point, wrapper.get(point.path)) for point in self._points]
        with wrapper.trace(**batch, **self._trace_kwargs()) as tracer:
            for point, envoy in envoys:
                saved[point.name] = nnsight.save(first_tensor(module_output(tracer, envoy, point.occurrence)))
            tracer.stop()
        return saved

    def _run_edited(
        self,
        inputs: Inputs,
        split_point: int | str,
        edit: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> Any:
        (point,) = resolve_split_points(self.model, split_point)
        _, batch = self.tokenize(inputs)
        mask = batch["attention_mask"].bool()
        with self._session() as wrapper:
            envoy = wrapper.get(point.path)
            with wrapper.trace(**batch, **self._trace_kwargs()) as tracer:
                if point.occurrence == 0:
                    output = envoy.output
                    envoy.output = replace_first(output, edit(first_tensor(output), mask))
                else:
                    for _ in tracer.iter[point.occurrence]:
                        output = envoy.output
                        envoy.output = replace_first(output, edit(first_tensor(output), mask))
                result = nnsight.save(wrapper.output)
        return result

    @contextmanager
    def _session(self) -> Iterator[Any]:
        """The model in eval mode, on `device`, wrapped by nnsight; everything restored on exit, also on error."""
        model = self.model
        modes = [(module, module.training) for module in model.modules()]
        original = self._input_device()
        move = self.device is not None and torch.device(self.device) != original
        move = move and not getattr(model, "hf_device_map", None)
        try:
            model.eval()
            if move:
                model.to(self.device)
            if self.wrapper is not None:
                yield self.wrapper
            else:
                with wrapped(model) as wrapper:
                    yield wrapper
        finally:
            if move:
                model.to(original)
            for module, training in modes:
                module.training = training

    def _flush(self, collected: dict, save_dir: str | Path, shard: int, granularity) -> list[Path]:
        paths = []
        for name, parts in collected.items():
            if parts:
                paths.append(save_shard(Path(save_dir), shard, merge_rows(name, parts, granularity)))
            parts.clear()
        return paths


def _load(path: str | Path, tokenizer: Any, automodel: Any) -> tuple[torch.nn.Module, Any]:
    """Loads a model (in eval mode) and, unless given, its tokenizer from a Hugging Face id or folder."""
    from transformers import AutoModel, AutoTokenizer

    model = (automodel or AutoModel).from_pretrained(str(path)).eval()
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(str(path), use_fast=True)
    return model, tokenizer


def _granularity(granularity: ActivationGranularity | str) -> ActivationGranularity:
    try:
        return ActivationGranularity(granularity)
    except ValueError:
        valid = [g.value for g in ActivationGranularity]
        raise ValueError(f"granularity={granularity!r} is unknown: use one of {valid}.") from None
