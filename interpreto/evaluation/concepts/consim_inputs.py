"""What ConSim reads: the classifier's predictions, each sample's concept activations and contributions, and the
class names (checked once, then class indices everywhere)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

import torch
from tqdm.auto import tqdm

from interpreto.evaluation.concepts.consim_prompts import normalized
from interpreto.model._encoding import encode_texts, texts_of
from interpreto.model.running import explaining

POOLINGS = ("max", "mean")


def classifier_predictions(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    n_classes: int,
    batch_size: int = 32,
    max_length: int | None = None,
    truncation: bool = False,
    progress: bool = False,
) -> list[int]:
    """The argmax of a classifier's `(batch, n_classes)` logits on each text, in batches, under
    `torch.inference_mode()` and in eval mode (the model's modes restored afterwards).

    Raises:
        TypeError: the model returns no `(batch, n_classes)` `.logits`.
        ValueError: naming `class_names`, when the model predicts a class past `n_classes`.
    """
    out: list[int] = []
    device = model.get_input_embeddings().weight.device
    with explaining(model, None), torch.inference_mode():
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="predictions", disable=not progress or len(starts) < 2):
            chunk = texts[start : start + batch_size]
            _, batch = encode_texts(tokenizer, chunk, max_length, truncation, model, device)
            logits = getattr(model(**batch), "logits", None)
            if logits is None or logits.dim() != 2:
                raise TypeError(
                    "model must be a classifier returning (batch, n_classes) .logits (e.g. loaded with "
                    "AutoModelForSequenceClassification), or pass predictions= to compute."
                )
            out += logits.argmax(dim=-1).tolist()
    if out and max(out) >= n_classes:
        raise ValueError(f"class_names has {n_classes} names but the model predicts class {max(out)}.")
    return out


def sample_concept_activations(
    explainer: Any,
    texts: list[str],
    pooling: str = "max",
    batch_size: int | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """`(n_texts, nb_concepts)` float32: each text's concept codes pooled over its text tokens.

    Texts go by chunks of `batch_size` (None: the split model's): their token activations at the explainer's
    split point (`get_activations(..., granularity="token")`, special tokens excluded) are encoded with
    `explainer.encode`, and each text's rows reduced by `pooling` (`"max"` or `"mean"`); a text without a text
    token gets zeros.

    Raises:
        ValueError: the explainer has no split model, or `pooling` is unknown.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r} is unknown: use one of {list(POOLINGS)}.")
    splitter = getattr(explainer, "model_with_split_points", None)
    if splitter is None:
        raise ValueError(
            "explainer: it has no model_with_split_points to read activations with; build it with one, or pass "
            "concept_activations= to ConSim.compute."
        )
    texts = texts_of(texts)
    point = explainer.resolved_split_point()
    size = batch_size or splitter.batch_size
    parts = []
    starts = range(0, len(texts), size)
    for start in tqdm(starts, desc="concept activations", disable=not progress or len(starts) < 2):
        chunk = texts[start : start + size]
        rows = splitter.get_activations(chunk, granularity="token", progress=False)[point]
        codes = explainer.encode(rows.activations).float().cpu()
        where = rows.input_indices
        pooled = torch.zeros(len(chunk), codes.shape[1])
        if pooling == "max":
            pooled.scatter_reduce_(0, where[:, None].expand_as(codes), codes, "amax", include_self=False)
        else:
            counts = torch.bincount(where, minlength=len(chunk)).clamp(min=1)
            pooled.index_add_(0, where, codes).div_(counts[:, None])
        parts.append(pooled)
    return torch.cat(parts)


def concept_contributions(
    importances: torch.Tensor | Callable,
    texts: list[str],
    needed: list[int],
    activations: torch.Tensor,
    n_classes: int,
) -> torch.Tensor:
    """`(len(needed), nb_concepts, n_classes)` contributions of each concept to each class for the texts
    `needed`, whose activations are `activations` `(len(needed), nb_concepts)`: `activation * importances` for
    `(nb_concepts, n_classes)` importances, the rows `needed` of `(n_texts, nb_concepts, n_classes)` ones, or
    what a function `importances(texts, activations)` returns.

    Raises:
        ValueError: naming `importances`, for a shape that fits none of these.
    """
    nb_concepts = activations.shape[1]
    if isinstance(importances, torch.Tensor):
        importances = importances.detach().float().cpu()
        if importances.shape == (nb_concepts, n_classes):
            return activations[:, :, None] * importances[None]
        if importances.shape == (len(texts), nb_concepts, n_classes):
            return importances[needed]
        raise ValueError(
            f"importances has shape {tuple(importances.shape)}: expected (nb_concepts, n_classes) = "
            f"({nb_concepts}, {n_classes}) or (n_texts, nb_concepts, n_classes)."
        )
    if not callable(importances):
        raise TypeError(f"importances must be a tensor or a function, got {type(importances).__name__}.")
    values = torch.as_tensor(importances([texts[i] for i in needed], activations)).float().cpu()
    if values.shape != (len(needed), nb_concepts, n_classes):
        raise ValueError(
            f"importances(texts, activations) returned shape {tuple(values.shape)}: expected (n, nb_concepts, "
            f"n_classes) = ({len(needed)}, {nb_concepts}, {n_classes})."
        )
    return values


def check_class_names(class_names: Sequence[str]) -> list[str]:
    """`class_names` as a list of at least two distinct names (case and punctuation aside), each with a letter
    or digit.

    Raises:
        ValueError: naming `class_names`.
    """
    if isinstance(class_names, str) or not isinstance(class_names, Sequence) or len(class_names) < 2:
        raise ValueError(f"class_names must be a list of at least two class names, got {class_names!r}.")
    names = [str(name) for name in class_names]
    keys = [normalized(name) for name in names]
    if not all(keys) or len(set(keys)) != len(keys):
        raise ValueError(
            f"class_names must be distinct names with a letter or digit, case and punctuation aside: {names!r}."
        )
    return names


def class_ids(values: Any, names: list[str], argument: str, n: int) -> list[int]:
    """`values` (class indices or names) as class indices, one per text.

    Raises:
        ValueError: naming `argument`, for a wrong length or an unknown class.
    """
    values = values.tolist() if isinstance(values, torch.Tensor) else list(values)
    if len(values) != n:
        raise ValueError(f"{argument} has {len(values)} entries but there are {n} texts: give one per text.")
    out = []
    for value in values:
        if isinstance(value, str) and value in names:
            out.append(names.index(value))
        elif is_int(value) and 0 <= value < len(names):
            out.append(int(value))
        else:
            raise ValueError(
                f"{argument} holds the unknown class {value!r}: use an index below {len(names)} or one of {names}."
            )
    return out


def is_int(value: Any) -> bool:
    """An integer, bools aside."""
    return isinstance(value, Integral) and not isinstance(value, bool)
