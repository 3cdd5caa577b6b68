"""Logit lens of concepts: the tokens a concept's direction promotes and suppresses when read by the LM head.

A concept's decoder direction `d = explainer.dictionary[c]` is passed through the model's final norm and its LM
head (`model.get_output_embeddings()`), as if it were the last hidden state: `logits = head(norm(d))`. Its top-k
tokens are those the direction pushes the next-token prediction towards, its bottom-k those it pushes away from.
This reads best for concepts of the residual stream (block outputs); the direction is not scaled, so the
norm's own scaling (RMSNorm and LayerNorm normalise their input) decides the logits' scale. All concepts go
through the head together, in blocks, under `torch.inference_mode()`, using the model's own modules (nothing
is copied, nothing on the model changes).

The final norm is found, when `final_norm="auto"`, at the first existing path of `FINAL_NORM_PATHS`
(`model.norm` for Llama, Mistral, Qwen, Gemma; `transformer.ln_f` for GPT-2, GPT-J; ...), else as an attribute
named in `FINAL_NORM_NAMES` of `model.base_model`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from interpreto.concepts.interpret._tokens import token_texts
from interpreto.concepts.interpret.codes import check_fitted, resolve_concepts

FINAL_NORM_PATHS = (
    "model.norm",
    "transformer.ln_f",
    "model.decoder.final_layer_norm",
    "gpt_neox.final_layer_norm",
    "model.final_layernorm",
    "transformer.norm_f",
    "backbone.norm_f",
)
FINAL_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "norm_f")
# upper bound on the floats of one (concepts, vocabulary) block of logits
_BLOCK = 1 << 24


@dataclass
class LogitLens:
    """The tokens a concept promotes and suppresses through the LM head.

    Attributes:
        concept: the concept index.
        top: `(token display text, logit)` of the k highest logits, highest first.
        bottom: `(token display text, logit)` of the k lowest logits, lowest first.
    """

    concept: int
    top: list[tuple[str, float]]
    bottom: list[tuple[str, float]]

    def to_dict(self) -> dict:
        """A JSON-ready dictionary (pairs as lists)."""
        data = asdict(self)
        data["top"] = [list(pair) for pair in self.top]
        data["bottom"] = [list(pair) for pair in self.bottom]
        return data


def find_final_norm(model: torch.nn.Module) -> torch.nn.Module | None:
    """The model's final norm (see the module docstring for where it is looked for), or None."""
    for path in FINAL_NORM_PATHS:
        try:
            return model.get_submodule(path)
        except AttributeError:
            continue
    base = getattr(model, "base_model", None)
    if isinstance(base, torch.nn.Module):
        for name in FINAL_NORM_NAMES:
            module = getattr(base, name, None)
            if isinstance(module, torch.nn.Module):
                return module
    return None


def logit_lens(
    explainer: Any,
    k: int = 10,
    concepts: str | int | list[int] = "all",
    final_norm: str | torch.nn.Module | None = "auto",
) -> dict[int, LogitLens]:
    """The top-k and bottom-k tokens of each concept's direction read by the LM head.

    Args:
        explainer: a fitted `ConceptExplainer` built with a `ModelWithSplitPoints` around a causal LM.
        k: tokens kept at each end.
        concepts: `"all"`, a concept index or a list of indices.
        final_norm: the norm applied before the head: `"auto"` (found as in the module docstring), a module path
            of the model (`"model.norm"`), a module, or None for the head alone.

    Returns:
        `{concept: LogitLens}`.

    Raises:
        NotFittedError: the explainer is not fitted.
        ValueError: the model is not a causal LM (no LM head), its final norm is not found, the concepts'
            dimension is not the head's, or a concept index is out of range.

    Examples:
        >>> from interpreto import ModelWithSplitPoints
        >>> from interpreto.concepts import NeuronsAsConcepts
        >>> from interpreto.zoo import tiny_gpt2
        >>> model, tokenizer = tiny_gpt2()
        >>> splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
        >>> neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(["The dog ran."]))
        >>> lens = logit_lens(neurons, k=3, concepts=[0, 5])
        >>> sorted(lens), len(lens[0].top), lens[0].top[0][1] >= lens[0].top[1][1] >= lens[0].bottom[0][1]
        ([0, 5], 3, True)
    """
    check_fitted(explainer)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    splitter = explainer.model_with_split_points
    if splitter is None:
        raise ValueError(
            f"explainer: this {type(explainer).__name__} has no model_with_split_points: the logit lens needs "
            f"the model's LM head; build the explainer with a ModelWithSplitPoints."
        )
    model, tokenizer = splitter.model, splitter.tokenizer
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        raise ValueError(
            f"logit lens needs a causal LM: {type(model).__name__} has no LM head (get_output_embeddings() is "
            f"None); use a ...ForCausalLM model."
        )
    norm = _resolve_norm(model, final_norm)
    chosen = resolve_concepts(concepts, explainer.nb_concepts)
    directions = explainer.dictionary[chosen]
    weight = head.weight
    if directions.shape[1] != weight.shape[1]:
        raise ValueError(
            f"explainer: its concepts have {directions.shape[1]} dimensions but the LM head reads "
            f"{weight.shape[1]}: the logit lens needs concepts of the residual stream (a block's output)."
        )
    vocabulary = min(weight.shape[0], len(tokenizer))
    kept = min(k, vocabulary)
    step = max(1, _BLOCK // vocabulary)
    tops, bottoms = [], []
    with torch.inference_mode():
        for start in range(0, len(chosen), step):
            block = directions[start : start + step].to(device=weight.device, dtype=weight.dtype)
            logits = head(norm(block) if norm is not None else block).float()[:, :vocabulary]
            tops.append(torch.topk(logits, kept, dim=1))
            bottoms.append(torch.topk(logits, kept, dim=1, largest=False))
    top_values = torch.cat([t.values for t in tops]).cpu() if tops else torch.zeros(0, kept)
    top_ids = torch.cat([t.indices for t in tops]).cpu() if tops else torch.zeros(0, kept, dtype=torch.long)
    low_values = torch.cat([b.values for b in bottoms]).cpu() if bottoms else torch.zeros(0, kept)
    low_ids = (
        torch.cat([b.indices for b in bottoms]).cpu() if bottoms else torch.zeros(0, kept, dtype=torch.long)
    )
    ids = sorted(set(top_ids.flatten().tolist()) | set(low_ids.flatten().tolist()))
    names = dict(zip(ids, token_texts(tokenizer, ids), strict=True))
    return {
        concept: LogitLens(
            concept=concept,
            top=[(names[i], v) for i, v in zip(top_ids[row].tolist(), top_values[row].tolist(), strict=True)],
            bottom=[
                (names[i], v) for i, v in zip(low_ids[row].tolist(), low_values[row].tolist(), strict=True)
            ],
        )
        for row, concept in enumerate(chosen)
    }


def _resolve_norm(model: torch.nn.Module, final_norm: str | torch.nn.Module | None) -> torch.nn.Module | None:
    if final_norm is None or isinstance(final_norm, torch.nn.Module):
        return final_norm
    if final_norm == "auto":
        norm = find_final_norm(model)
        if norm is None:
            raise ValueError(
                f"final_norm: no final norm found in {type(model).__name__} (tried {list(FINAL_NORM_PATHS)} and "
                f"base_model.{{{', '.join(FINAL_NORM_NAMES)}}}): pass its module path, the module, or None to "
                f"apply the LM head alone."
            )
        return norm
    try:
        return model.get_submodule(final_norm)
    except AttributeError:
        raise ValueError(
            f"final_norm={final_norm!r} is not a module of {type(model).__name__}: pass a module path such as "
            f"'model.norm', 'auto', or None."
        ) from None
