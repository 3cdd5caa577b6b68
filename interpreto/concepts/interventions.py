"""Interventions on concepts: edit a model's hidden states through a concept dictionary, then read or generate.

At each edited position, with `z = encode(a)` the concept codes of the hidden state `a` at the explainer's split
point and `z'` the edited codes, `a` becomes `a + decode(z') - decode(z)`: the reconstruction error
`a - decode(z)` is kept, so an edit that leaves `z` as it is leaves the output exactly unchanged (bit for bit),
and only the edited concepts move. `keep_error=False` replaces `a` by `decode(z')` instead. Steering adds
`alpha` times a concept's decoder direction (or clamps the concept) at every step of greedy generation.

Positions count the tokens of each text as `ModelWithSplitPoints.tokenize` gives them (special tokens
included); `"text"` leaves out special tokens and position 0 (the attention sink, which carries very large
activations in most language models); padding is never edited.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from interpreto.model._encoding import Inputs, texts_of

INTERVENTION_MODES = ("set", "scale", "add")
STEERING_MODES = ("add", "set")


def intervene(
    explainer: Any,
    inputs: Inputs,
    interventions: dict[int, float],
    mode: str = "set",
    positions: str | list[int] = "text",
    keep_error: bool = True,
) -> Any:
    """Runs the model on `inputs` with concepts set to, scaled by or shifted by given values at the split point.

    Args:
        explainer: a fitted `ConceptExplainer` with a `model_with_split_points`; the edit happens at its fitted
            split point, through `model_with_split_points.intervene` (one right-padded batch).
        inputs: a text or a list of texts.
        interventions: `{concept index: value}`; each concept `c` becomes `value` (`"set"`), `z_c * value`
            (`"scale"`) or `z_c + value` (`"add"`).
        mode: `"set"`, `"scale"` or `"add"`.
        positions: the token positions edited: `"text"` (every token but special ones and position 0),
            `"all"` (every token, padding excluded), or a list of token indices applied to each text (negative
            ones count from that text's end).
        keep_error: keep the reconstruction error (`a + decode(z') - decode(z)`); False puts `decode(z')`.

    Returns:
        The model's output (e.g. a `SequenceClassifierOutput` with `.logits`), computed under
        `torch.inference_mode()`.

    Raises:
        ValueError: naming the argument, for an unknown concept, a non-numeric value, an unknown mode or bad
            positions.

    Examples:
        >>> import torch
        >>> from interpreto import ModelWithSplitPoints
        >>> from interpreto.concepts import NeuronsAsConcepts
        >>> from interpreto.concepts.interventions import intervene
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
        >>> neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(["a good movie"]))
        >>> same = intervene(neurons, ["a good movie", "bad"], {3: 1.0}, mode="scale").logits
        >>> torch.equal(same, splitter.intervene(["a good movie", "bad"], 1, lambda hidden: hidden).logits)
        True
        >>> moved = intervene(neurons, ["a good movie", "bad"], {3: 50.0}, positions="all").logits
        >>> bool((moved - same).abs().max() > 0)
        True
    """
    splitter, point = _target(explainer)
    concepts, values = _check_interventions(explainer, interventions)
    _check_choice("mode", mode, INTERVENTION_MODES)
    if not isinstance(keep_error, bool):
        raise ValueError(f"keep_error must be True or False, got {keep_error!r}.")
    samples, batch = splitter.tokenize(inputs)
    mask = _position_mask(samples, batch["attention_mask"], positions)

    def edit_codes(codes: torch.Tensor) -> torch.Tensor:
        edited = codes.clone()
        vals = values.to(codes.device)
        if mode == "set":
            edited[:, concepts] = vals
        elif mode == "scale":
            edited[:, concepts] = codes[:, concepts] * vals
        else:
            edited[:, concepts] = codes[:, concepts] + vals
        return edited

    fn = _row_editor(lambda hidden: mask.to(hidden.device), _code_edit(explainer, edit_codes, keep_error))
    with torch.inference_mode():
        return splitter.intervene(inputs, point, fn)


def steer(
    explainer: Any,
    prompts: Inputs,
    concept: int,
    alpha: float,
    mode: str = "add",
    normalize: bool = True,
    positions: str = "text",
    return_ids: bool = False,
    progress: bool | None = None,
    **generate_kwargs: Any,
) -> list[str] | list[list[int]]:
    """Generates continuations of `prompts` with a concept pushed into the hidden states at every step.

    Runs `model_with_split_points.generate` (greedy by default, batches of the splitter's `batch_size`) at the
    explainer's fitted split point. `"add"`: `alpha * d` is added to the hidden states, `d` the concept's
    decoder direction (`explainer.dictionary[concept]`, scaled to unit norm when `normalize`). `"set"`: the
    concept is clamped to `alpha`, the reconstruction error kept (`a + decode(z') - decode(z)`). The prompt's
    positions (those of `positions`) are edited in the prompt pass, and every generated token's as it comes.

    Args:
        explainer: a fitted `ConceptExplainer` with a `model_with_split_points` holding a generative model.
        prompts: a text or a list of texts (already in the model's chat format if it needs one).
        concept: the concept's index.
        alpha: the step along the direction (`"add"`) or the concept's clamped value (`"set"`).
        mode: `"add"` or `"set"`.
        normalize: with `"add"`, use the unit-norm direction.
        positions: the prompt positions edited: `"text"` (special tokens and position 0 left out) or `"all"`.
        return_ids: return the generated token ids instead of their text.
        progress: show a progress bar over batches; None uses the splitter's `progress`.
        **generate_kwargs: passed to `model.generate` (`max_new_tokens=` defaults to 20).

    Returns:
        Per prompt, the generated continuation (prompt excluded): its text (special tokens skipped), or with
        `return_ids` its token ids up to and including the first EOS.

    Examples:
        >>> from interpreto import ModelWithSplitPoints
        >>> from interpreto.concepts import NeuronsAsConcepts
        >>> from interpreto.concepts.interventions import steer
        >>> from interpreto.zoo import tiny_gpt2
        >>> model, tokenizer = tiny_gpt2()
        >>> splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
        >>> neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(["The dog"]))
        >>> prompt = tokenizer("The dog", return_tensors="pt")
        >>> plain = model.generate(**prompt, max_new_tokens=4, do_sample=False)[0, 2:].tolist()
        >>> steer(neurons, "The dog", concept=0, alpha=0.0, return_ids=True, max_new_tokens=4) == [plain]
        True
        >>> texts = steer(neurons, ["The dog", "A cat"], concept=0, alpha=30.0, max_new_tokens=4)
        >>> len(texts), type(texts[0]).__name__
        (2, 'str')
    """
    splitter, point = _target(explainer)
    concept = _check_concept(explainer, concept, "concept")
    alpha = _check_number("alpha", alpha)
    _check_choice("mode", mode, STEERING_MODES)
    _check_choice("positions", positions, ("text", "all"))
    if not isinstance(normalize, bool):
        raise ValueError(f"normalize must be True or False, got {normalize!r}.")
    if mode == "add":
        direction = explainer.dictionary[concept].float()
        norm = float(direction.norm())
        if normalize and norm == 0:
            raise ValueError(f"concept={concept}: its decoder direction is zero and cannot be normalized.")
        direction = direction / norm if normalize else direction

        def edit_rows(rows: torch.Tensor) -> torch.Tensor:
            return rows.float() + alpha * direction.to(rows.device)
    else:

        def clamp(codes: torch.Tensor) -> torch.Tensor:
            edited = codes.clone()
            edited[:, concept] = alpha
            return edited

        edit_rows = _code_edit(explainer, clamp, keep_error=True)
    if "max_new_tokens" not in generate_kwargs and "max_length" not in generate_kwargs:
        generate_kwargs["max_new_tokens"] = 20
    eos = generate_kwargs.get("eos_token_id", splitter.model.generation_config.eos_token_id)
    eos = set([] if eos is None else [eos] if isinstance(eos, int) else list(eos))
    texts = texts_of(prompts)
    starts = range(0, len(texts), splitter.batch_size)
    show = splitter.progress if progress is None else progress
    results: list = []
    for start in tqdm(starts, desc="steering", disable=not show or len(starts) < 2):
        chunk = texts[start : start + splitter.batch_size]
        samples, batch = splitter.tokenize(chunk)
        right = _position_mask(samples, batch["attention_mask"], positions)
        width = right.shape[1]
        # the left-padded layout of `ModelWithSplitPoints.generate`: token j of prompt i at width - len_i + j
        order = (torch.arange(width) - (width - batch["attention_mask"].sum(1).cpu())[:, None]) % width
        fn = _row_editor(_step_masks(right.cpu().gather(1, order)), edit_rows)
        ids = splitter.generate(chunk, point, fn, **generate_kwargs).cpu()
        for row in ids.tolist():
            end = next((k + 1 for k, token in enumerate(row) if token in eos), len(row))
            row = row[:end]
            results.append(row if return_ids else splitter.tokenizer.decode(row, skip_special_tokens=True))
    return results


# ---- helpers ----------------------------------------------------------------------------------------------------


def _target(explainer: Any) -> tuple[Any, str]:
    """The explainer's split model and fitted split point; a `ValueError` naming `explainer` otherwise."""
    check = getattr(explainer, "_check_fitted", None)
    if check is None or not hasattr(explainer, "nb_concepts"):
        raise ValueError(f"explainer must be a ConceptExplainer, got {type(explainer).__name__}.")
    check()
    splitter = explainer.model_with_split_points
    if splitter is None:
        raise ValueError(
            "explainer has no model_with_split_points: build it with the ModelWithSplitPoints its activations "
            "come from to intervene on the model."
        )
    return splitter, explainer.resolved_split_point()


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is unknown: use one of {list(choices)}.")


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    return float(value)


def _check_concept(explainer: Any, concept: Any, name: str) -> int:
    n = explainer.nb_concepts
    if isinstance(concept, bool) or not isinstance(concept, numbers.Integral) or not 0 <= concept < n:
        raise ValueError(
            f"{name}: concept {concept!r} is unknown: the explainer has {n} concepts, indices 0 to {n - 1}."
        )
    return int(concept)


def _check_interventions(explainer: Any, interventions: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """`{concept: value}` as (concept indices, float values); a `ValueError` naming `interventions`."""
    if not isinstance(interventions, dict):
        raise ValueError(
            f"interventions must be a dict {{concept index: value}}, got {type(interventions).__name__}."
        )
    concepts = [_check_concept(explainer, c, "interventions") for c in interventions]
    values = [_check_number(f"interventions[{c}]", v) for c, v in interventions.items()]
    return torch.tensor(concepts, dtype=torch.long), torch.tensor(values, dtype=torch.float32)


def _position_mask(samples: list, attention_mask: torch.Tensor, positions: Any) -> torch.Tensor:
    """Bool `(batch, seq)` of the edited positions of the right-padded batch (never padding)."""
    mask = torch.zeros(attention_mask.shape, dtype=torch.bool)
    if isinstance(positions, str):
        _check_choice("positions", positions, ("text", "all"))
        for i, sample in enumerate(samples):
            keep = [positions == "all" or (j > 0 and text) for j, text in enumerate(sample.is_text)]
            mask[i, : len(keep)] = torch.tensor(keep, dtype=torch.bool)
        return mask
    if not isinstance(positions, (list, tuple)) or not positions:
        raise ValueError(
            f"positions must be 'text', 'all' or a non-empty list of token indices, got {positions!r}."
        )
    for i, sample in enumerate(samples):
        n = len(sample.is_text)
        for p in positions:
            if isinstance(p, bool) or not isinstance(p, numbers.Integral) or not -n <= p < n:
                raise ValueError(
                    f"positions: {p!r} is not a token index of inputs[{i}], which has {n} tokens."
                )
            mask[i, int(p) % n] = True
    return mask


def _code_edit(
    explainer: Any, edit_codes: Callable[[torch.Tensor], torch.Tensor], keep_error: bool
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Rows `a` -> `a + decode(z') - decode(z)` (or `decode(z')`), `z = encode(a)`, `z' = edit_codes(z)`."""

    def edit_rows(rows: torch.Tensor) -> torch.Tensor:
        codes = explainer.encode(rows)
        new = explainer.decode(edit_codes(codes))
        return rows.float() + (new - explainer.decode(codes)) if keep_error else new

    return edit_rows


def _row_editor(
    mask_of: Callable[[torch.Tensor], torch.Tensor], edit_rows: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Hidden states `(batch, seq, hidden)` -> a copy, its rows at `mask_of(hidden)` through `edit_rows`."""

    def fn(hidden: torch.Tensor) -> torch.Tensor:
        mask = mask_of(hidden)
        if not bool(mask.any()):
            return hidden
        edited = hidden.clone()
        edited[mask] = edit_rows(hidden[mask]).to(hidden.dtype)
        return edited

    return fn


def _step_masks(prompt_mask: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The edited positions of each generation step: the prompt's at the prompt pass, every new token after
    (with the KV cache a step holds one token; without it, the whole sequence so far)."""
    calls = [0]

    def mask_of(hidden: torch.Tensor) -> torch.Tensor:
        batch, seq = hidden.shape[:2]
        first, calls[0] = calls[0] == 0, calls[0] + 1
        if first:
            mask = prompt_mask
        elif seq == 1:
            mask = torch.ones(batch, 1, dtype=torch.bool)
        else:
            new = torch.ones(batch, seq - prompt_mask.shape[1], dtype=torch.bool)
            mask = torch.cat([prompt_mask, new], dim=1)
        return mask.to(hidden.device)

    return mask_of
