"""Per-token concept activations of a dataset of texts: what every interpretation step reads.

`ConceptCodes.compute(explainer, texts)` reads the activations of every token (special tokens included) at the
explainer's split point, encodes them into concept codes, and records each token's display text (see
`interpreto.concepts.interpret._tokens`: no 'Ġ', '▁' or '##' marks) and whether it is *scored*, i.e. may be
ranked or sampled: special tokens (BOS, `[CLS]`, `[SEP]`, chat-template markup) never are, and neither is
position 0 when `exclude_first_token=True` (the attention-sink token, whose activations are often far larger
than any other's). `ConceptExample` is one element shown with the tokens around it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from interpreto.concepts.base import NotFittedError
from interpreto.concepts.interpret._tokens import display_tokens

CODES_FILE, META_FILE = "codes.safetensors", "codes.json"


@dataclass
class ContextToken:
    """One token shown around an example.

    Attributes:
        text: its display text (no 'Ġ', '▁' or '##' marks; a leading space is a space).
        activation: the concept's activation on it.
        scored: False for a token left out of rankings (position 0), which a display may leave uncoloured.
    """

    text: str
    activation: float
    scored: bool = True


@dataclass
class ConceptExample:
    """An element (token, word, sentence or sample) of an input, with its activation and context.

    Attributes:
        concept: the concept index.
        activation: the element's activation (for words, sentences and samples: the max over its scored tokens).
        text: the element's display text.
        input_index: which input text it comes from.
        position: the element's index within that input (the token index at token granularity).
        context: the tokens around the element, its own tokens included (special tokens left out).
        focus: `[start, end)` of the element's own tokens within `context`.
    """

    concept: int
    activation: float
    text: str
    input_index: int
    position: int
    context: list[ContextToken]
    focus: tuple[int, int]

    def to_dict(self) -> dict:
        """A JSON-ready dictionary (`focus` as a list)."""
        data = asdict(self)
        data["focus"] = list(self.focus)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ConceptExample:
        """The inverse of `to_dict`."""
        values = dict(data)
        values["context"] = [ContextToken(**token) for token in data["context"]]
        values["focus"] = tuple(data["focus"])
        return cls(**values)


@dataclass
class ConceptCodes:
    """Per-token concept activations of a dataset of texts.

    Attributes:
        texts: the input texts.
        tokens: the display text of each token of each text (special tokens included).
        codes: per text, float32 `(n_tokens, nb_concepts)` on CPU.
        scored: per text, bool `(n_tokens,)`; False = excluded from ranking and sampling (special tokens and,
            by default, position 0).
        offsets: per text, each token's `(start, end)` characters in the text (words and sentences are built
            from them); None when unknown (then read from `tokens`).
        special: per text, bool `(n_tokens,)`, True for special tokens and template markup, which contexts
            leave out; None when unknown (then every token may appear in a context).

    Examples:
        >>> from interpreto import ModelWithSplitPoints
        >>> from interpreto.concepts import NeuronsAsConcepts
        >>> from interpreto.zoo import tiny_gpt2
        >>> model, tokenizer = tiny_gpt2()
        >>> splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
        >>> neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(["The dog ran."]))
        >>> codes = ConceptCodes.compute(neurons, ["The dog ran."], progress=False)
        >>> codes.tokens[0], codes.scored[0].tolist(), codes.nb_concepts
        (['The', ' dog', ' r', 'an', '.'], [False, True, True, True, True], 32)
        >>> values, where = codes.values(3)
        >>> where.tolist()[:2]
        [[0, 1], [0, 2]]
    """

    texts: list[str]
    tokens: list[list[str]]
    codes: list[torch.Tensor]
    scored: list[torch.Tensor]
    offsets: list[list[tuple[int, int]]] | None = None
    special: list[torch.Tensor] | None = None
    _flat: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        n = len(self.texts)
        for name in ("tokens", "codes", "scored", "offsets", "special"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(
                    f"{name} has {len(value)} entries but there are {n} texts: give one per text."
                )
        for k, (tokens, codes, scored) in enumerate(zip(self.tokens, self.codes, self.scored, strict=True)):
            if codes.dim() != 2 or codes.shape[0] != len(tokens) or scored.shape != (len(tokens),):
                raise ValueError(
                    f"codes[{k}] must be (n_tokens, nb_concepts) and scored[{k}] (n_tokens,) with n_tokens = "
                    f"len(tokens[{k}]) = {len(tokens)}; got {tuple(codes.shape)} and {tuple(scored.shape)}."
                )

    # ---- building ---------------------------------------------------------------------------------------------

    @classmethod
    def compute(
        cls, explainer: Any, texts: list[str], exclude_first_token: bool = True, progress: bool = True
    ) -> ConceptCodes:
        """Concept codes of every token of `texts`, through `explainer.model_with_split_points`.

        Texts go by chunks of the split model's `batch_size`: each chunk's all-token activations at the
        explainer's split point are read (`get_activations(..., granularity="all_tokens")`, inference mode,
        the model left as it was) and encoded with `explainer.encode`; only the codes are kept.

        Args:
            explainer: a fitted `ConceptExplainer` built with a `ModelWithSplitPoints`.
            texts: the texts (a single text is accepted).
            exclude_first_token: leave position 0 (the attention sink) out of rankings and sampling.
            progress: show a progress bar over chunks.

        Raises:
            NotFittedError: the explainer is not fitted.
            ValueError: `texts` is empty, or the explainer has no split model / its split point is not one of it.
        """
        check_fitted(explainer)
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("texts is empty: pass at least one text.")
        splitter = explainer.model_with_split_points
        if splitter is None:
            raise ValueError(
                f"explainer: this {type(explainer).__name__} has no model_with_split_points, so texts cannot be "
                f"encoded: build it with a ModelWithSplitPoints (or pass ConceptCodes built by hand)."
            )
        point = explainer.resolved_split_point()
        if point not in splitter.split_points:
            raise ValueError(
                f"explainer: its split point {point!r} is not one of the split model's {splitter.split_points}: "
                f"split the model there."
            )
        tokenizer = splitter.tokenizer
        step = splitter.batch_size
        tokens, codes, scored, offsets, special = [], [], [], [], []
        starts = range(0, len(texts), step)
        for start in tqdm(starts, desc="concept codes", disable=not progress or len(starts) < 2):
            chunk = texts[start : start + step]
            samples, batch = splitter.tokenize(chunk)
            rows = splitter.get_activations(chunk, granularity="all_tokens", progress=False)[point]
            values = explainer.encode(rows.activations).float().cpu()
            lengths = [len(sample.tokens) for sample in samples]
            if values.shape[0] != sum(lengths):
                raise RuntimeError(f"got {values.shape[0]} activation rows for {sum(lengths)} tokens.")
            ids = batch["input_ids"].tolist()
            for k, (sample, part) in enumerate(zip(samples, values.split(lengths), strict=True)):
                text_ids = ids[k][: lengths[k]]
                tokens.append(display_tokens(tokenizer, sample.text, text_ids, sample.offsets))
                codes.append(part)
                is_special = torch.tensor([not keep for keep in sample.is_text], dtype=torch.bool)
                keep = ~is_special
                if exclude_first_token and len(keep):
                    keep[0] = False
                scored.append(keep)
                special.append(is_special)
                offsets.append([tuple(span) for span in sample.offsets])
        return cls(texts, tokens, codes, scored, offsets=offsets, special=special)

    # ---- reading ----------------------------------------------------------------------------------------------

    @property
    def nb_concepts(self) -> int:
        """The number of concepts (columns of every code matrix)."""
        return int(self.codes[0].shape[1]) if self.codes else 0

    def flat(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All tokens at once: codes `(n_tokens_total, nb_concepts)`, scored `(n_tokens_total,)` and each
        token's `(input_index, position)` `(n_tokens_total, 2)` (computed once, then cached)."""
        if self._flat is None:
            lengths = [len(tokens) for tokens in self.tokens]
            where = torch.cat(
                [torch.stack([torch.full((n,), k), torch.arange(n)], dim=1) for k, n in enumerate(lengths)]
            ).long()
            self._flat = (torch.cat(self.codes).float(), torch.cat(self.scored).bool(), where)
        return self._flat

    def values(self, concept: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The concept's activations over every scored token of the dataset `(n,)` and their
        `(input_index, position)` `(n, 2)`, in dataset order."""
        check_concept(concept, self.nb_concepts)
        codes, scored, where = self.flat()
        return codes[scored, concept], where[scored]

    def visible(self, input_index: int) -> list[int]:
        """The token positions of an input that contexts show (all but special tokens)."""
        n = len(self.tokens[input_index])
        if self.special is None:
            return list(range(n))
        return [j for j, special in enumerate(self.special[input_index].tolist()) if not special]

    def context_window(
        self, concept: int, input_index: int, first: int, last: int, context: int | None
    ) -> tuple[list[ContextToken], tuple[int, int]]:
        """The visible tokens from `context` before token `first` to `context` after token `last` (None: all),
        and `[start, end)` of tokens `first..last` within them."""
        shown = self.visible(input_index)
        inside = [i for i, j in enumerate(shown) if first <= j <= last]
        if inside:
            begin, end = inside[0], inside[-1] + 1
        else:  # the element is only special tokens: show where it would be
            begin = end = sum(1 for j in shown if j < first)
        low = 0 if context is None else max(0, begin - context)
        high = len(shown) if context is None else min(len(shown), end + context)
        window = shown[low:high]
        values = self.codes[input_index][window, concept].tolist()
        scored = self.scored[input_index][window].tolist()
        texts = self.tokens[input_index]
        tokens = [
            ContextToken(texts[j], value, flag) for j, value, flag in zip(window, values, scored, strict=True)
        ]
        return tokens, (begin - low, end - low)

    def example(self, concept: int, input_index: int, position: int, context: int = 8) -> ConceptExample:
        """The token at `(input_index, position)` as an example with `context` tokens each side."""
        check_concept(concept, self.nb_concepts)
        if not 0 <= input_index < len(self.texts) or not 0 <= position < len(self.tokens[input_index]):
            raise ValueError(
                f"(input_index, position) = ({input_index}, {position}) is outside the data: {len(self.texts)} "
                f"texts."
            )
        tokens, focus = self.context_window(concept, input_index, position, position, context)
        return ConceptExample(
            concept=concept,
            activation=float(self.codes[input_index][position, concept]),
            text=self.token_label(input_index, position),
            input_index=input_index,
            position=position,
            context=tokens,
            focus=focus,
        )

    def token_label(self, input_index: int, position: int) -> str:
        """A token's text as an example's label: its display text stripped of surrounding whitespace (kept
        when the token is only whitespace), or, for a piece of a multi-byte character, that character."""
        shown = self.tokens[input_index][position]
        if not shown and self.offsets is not None:
            start, end = self.offsets[input_index][position]
            shown = self.texts[input_index][start:end]
        return shown.strip() or shown

    # ---- saving -----------------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Writes the codes to the folder `path`: `codes.safetensors` (codes and masks) and `codes.json` (texts,
        tokens, offsets). Read them back with `ConceptCodes.load(path)`."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        codes, scored, _ = self.flat()
        tensors = {"codes": codes.contiguous(), "scored": scored.to(torch.uint8)}
        if self.special is not None:
            tensors["special"] = torch.cat(self.special).to(torch.uint8)
        save_file(tensors, str(folder / CODES_FILE))
        meta = {"texts": self.texts, "tokens": self.tokens, "offsets": self.offsets}
        (folder / META_FILE).write_text(json.dumps(meta))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> ConceptCodes:
        """Reads codes written by `save`."""
        from safetensors.torch import load_file

        folder = Path(path)
        meta = json.loads((folder / META_FILE).read_text())
        tensors = load_file(str(folder / CODES_FILE))
        lengths = [len(tokens) for tokens in meta["tokens"]]
        special = tensors.get("special")
        offsets = meta.get("offsets")
        return cls(
            texts=meta["texts"],
            tokens=meta["tokens"],
            codes=[part.clone() for part in tensors["codes"].split(lengths)],
            scored=[part.bool() for part in tensors["scored"].split(lengths)],
            offsets=[[tuple(span) for span in spans] for spans in offsets] if offsets is not None else None,
            special=[part.bool() for part in special.split(lengths)] if special is not None else None,
        )


def check_fitted(explainer: Any) -> None:
    """Raises `NotFittedError` for an explainer that is not fitted."""
    if not getattr(explainer, "is_fitted", False):
        raise NotFittedError(
            f"{type(explainer).__name__} is not fitted: call .fit(activations) first (or load a fitted one with "
            f"interpreto.concepts.load_concepts(path))."
        )


def check_concept(concept: Any, nb_concepts: int) -> None:
    """Raises a `ValueError` naming `concepts` when `concept` is not an index in `[0, nb_concepts)`."""
    if isinstance(concept, bool) or not isinstance(concept, int) or not 0 <= concept < nb_concepts:
        raise ValueError(
            f"concepts: {concept!r} is not a concept index: use integers in [0, {nb_concepts}) (or 'all')."
        )


def resolve_concepts(concepts: Any, nb_concepts: int) -> list[int]:
    """`"all"`, an index or a list of indices as a list of valid indices (a `ValueError` naming `concepts` else)."""
    if isinstance(concepts, str):
        if concepts != "all":
            raise ValueError(f"concepts={concepts!r}: pass 'all', an index or a list of indices.")
        return list(range(nb_concepts))
    if isinstance(concepts, torch.Tensor):
        concepts = concepts.tolist()
    chosen = [concepts] if isinstance(concepts, int) else list(concepts)
    resolved = []
    for concept in chosen:
        if not isinstance(concept, bool) and hasattr(concept, "__index__"):
            concept = int(concept)
        check_concept(concept, nb_concepts)
        resolved.append(concept)
    return resolved
