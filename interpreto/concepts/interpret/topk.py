"""Top-k inputs: the tokens, words, sentences or samples on which each concept fires most.

Ranking rules (the same for every concept explainer):

- Only *scored* tokens count (see `ConceptCodes`): special tokens and, by default, position 0 (the attention
  sink) never appear and never lend their activation to an element.
- An element's activation is its token's for `"token"`, and the MAX over its scored tokens for `"word"`,
  `"sentence"` and `"sample"` (a concept is present in a word when it fires on any of its pieces; a mean would
  dilute it by the word's length). Words and sentences are those of `interpreto.model.granularity.group_tokens`,
  as for `get_activations(..., granularity="word")`, whose element index is the example's `position`; an element
  without scored tokens is skipped.
- Only elements with activation `> min_activation` (0 by default) qualify, so a concept that never fires gets
  fewer examples, or none, rather than zero-activation filler. Ranking is by activation, descending; ties go to
  the earlier element in dataset order.
- Duplicates: elements with the same text (case-sensitive, surrounding whitespace stripped) keep only their
  highest-activation occurrence, so that the k examples show k different elements; `merge_duplicates=False`
  keeps every occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from interpreto.concepts.interpret.codes import ConceptCodes, ConceptExample, check_fitted, resolve_concepts
from interpreto.model.granularity import Granularity, group_tokens

GRANULARITIES = ("token", "word", "sentence", "sample")
# upper bound on the floats of one (members, concepts) block
_BLOCK = 1 << 24


@dataclass
class _Elements:
    """Every candidate element of a dataset: its scored tokens (flat indices) and where it lies."""

    members: torch.Tensor  # (M,) flat token indices
    segment: torch.Tensor  # (M,) element of each member
    input_index: list[int]
    position: list[int]
    first: list[int]  # first and last token position of the element (its context span)
    last: list[int]
    text: list[str]

    def __len__(self) -> int:
        return len(self.text)


class TopKInputs:
    """The k elements of a dataset with the highest activation of each concept (see the module docstring).

    Args:
        explainer: a fitted `ConceptExplainer` (with a `ModelWithSplitPoints` when `interpret` gets texts).
        k: examples per concept (at most).
        granularity: `"token"`, `"word"`, `"sentence"` or `"sample"`.
        context: visible tokens shown each side of an element (special tokens are never shown); None shows
            the whole input.
        merge_duplicates: keep only the highest-activation occurrence of each element text.
        min_activation: only elements with activation above it qualify.
        max_sample_tokens: at `"sample"` granularity, the most tokens of a sample's context, centred on its
            highest-activation token; None shows whole samples.
        exclude_first_token: when `interpret` gets texts, leave position 0 out (see `ConceptCodes.compute`).
        progress: show a progress bar while computing codes from texts.

    Examples:
        >>> import torch
        >>> from interpreto.concepts import NeuronsAsConcepts
        >>> from interpreto.concepts.interpret import ConceptCodes, TopKInputs
        >>> codes = ConceptCodes(
        ...     texts=["a cat", "the cat sat"],
        ...     tokens=[["a", " cat"], ["the", " cat", " sat"]],
        ...     codes=[torch.tensor([[5.0], [2.0]]), torch.tensor([[0.0], [3.0], [1.0]])],
        ...     scored=[torch.tensor([False, True]), torch.tensor([False, True, True])],
        ... )
        >>> explainer = NeuronsAsConcepts(None).fit(torch.zeros(1, 1))
        >>> top = TopKInputs(explainer, k=3, context=1).interpret(0, inputs=codes)
        >>> [(example.text, example.activation, example.input_index) for example in top[0]]
        [('cat', 3.0, 1), ('sat', 1.0, 1)]
        >>> [(token.text, token.activation) for token in top[0][0].context], top[0][0].focus
        ([('the', 0.0), (' cat', 3.0), (' sat', 1.0)], (1, 2))
    """

    def __init__(
        self,
        explainer: Any,
        k: int = 10,
        granularity: str = "token",
        context: int | None = 8,
        merge_duplicates: bool = True,
        min_activation: float = 0.0,
        max_sample_tokens: int | None = 64,
        exclude_first_token: bool = True,
        progress: bool = True,
    ):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        granularity = getattr(granularity, "value", granularity)
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity={granularity!r} is unknown: use one of {list(GRANULARITIES)}.")
        for name, value in (("context", context), ("max_sample_tokens", max_sample_tokens)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer or None, got {value!r}.")
        self.explainer = explainer
        self.k = k
        self.granularity = granularity
        self.context = context
        self.merge_duplicates = merge_duplicates
        self.min_activation = float(min_activation)
        self.max_sample_tokens = max_sample_tokens
        self.exclude_first_token = exclude_first_token
        self.progress = progress

    def interpret(
        self, concepts: str | int | list[int] = "all", inputs: list[str] | ConceptCodes | None = None
    ) -> dict[int, list[ConceptExample]]:
        """The top-k examples of each concept.

        Args:
            concepts: `"all"`, a concept index or a list of indices.
            inputs: the texts to search (encoded with `ConceptCodes.compute`), or `ConceptCodes` already computed
                (reuse them across steps: encoding is the costly part).

        Returns:
            `{concept: examples}`, examples by decreasing activation, at most `k` each (fewer, or none, when the
            concept fires on fewer qualifying elements).

        Raises:
            NotFittedError: the explainer is not fitted.
            ValueError: no inputs, empty texts, or a concept index outside `[0, nb_concepts)`.
        """
        check_fitted(self.explainer)
        if inputs is None:
            raise ValueError("inputs: pass the texts to search (or ConceptCodes computed from them).")
        if isinstance(inputs, ConceptCodes):
            codes = inputs
        else:
            codes = ConceptCodes.compute(
                self.explainer, inputs, exclude_first_token=self.exclude_first_token, progress=self.progress
            )
        nb_concepts = getattr(self.explainer, "nb_concepts", None)
        if nb_concepts is not None and codes.nb_concepts != nb_concepts:
            raise ValueError(
                f"inputs: these ConceptCodes have {codes.nb_concepts} concepts but the explainer has "
                f"{nb_concepts}: compute them with this explainer."
            )
        chosen = resolve_concepts(concepts, codes.nb_concepts)
        elements = self._elements(codes)
        flat_codes = codes.flat()[0]
        keys = [text.strip() for text in elements.text]
        results: dict[int, list[ConceptExample]] = {}
        step = max(1, _BLOCK // max(1, len(elements.members)))
        for start in range(0, len(chosen), step):
            block = chosen[start : start + step]
            contiguous = block == list(range(block[0], block[0] + len(block)))
            columns = flat_codes[:, block[0] : block[0] + len(block)] if contiguous else flat_codes[:, block]
            values = _element_max(columns, elements).T.contiguous()  # (concepts, elements)
            masked = torch.where(values > self.min_activation, values, float("-inf"))
            counts = (values > self.min_activation).sum(dim=1).tolist()
            for row, concept in enumerate(block):
                picked = self._select(masked[row], counts[row], keys)
                results[concept] = [self._example(codes, elements, concept, e, float(v)) for e, v in picked]
        return results

    # ---- internals --------------------------------------------------------------------------------------------

    def _elements(self, codes: ConceptCodes) -> _Elements:
        members: list[int] = []
        segment: list[int] = []
        table = _Elements(torch.empty(0), torch.empty(0), [], [], [], [], [])
        base = 0
        for i in range(len(codes.texts)):
            scored = codes.scored[i].tolist()
            for position, group, label in self._groups(codes, i):
                kept = [j for j in group if scored[j]]
                if not kept:
                    continue
                segment += [len(table.text)] * len(kept)
                members += [base + j for j in kept]
                table.input_index.append(i)
                table.position.append(position)
                table.first.append(min(group))
                table.last.append(max(group))
                table.text.append(label)
            base += len(scored)
        table.members = torch.tensor(members, dtype=torch.long)
        table.segment = torch.tensor(segment, dtype=torch.long)
        return table

    def _groups(self, codes: ConceptCodes, i: int) -> list[tuple[int, list[int], str]]:
        """(position, token positions, text) of each element of input `i`."""
        text, tokens = codes.texts[i], codes.tokens[i]
        if self.granularity == "token":
            return [(j, [j], codes.token_label(i, j)) for j in range(len(tokens))]
        if self.granularity == "sample":
            return [(0, list(range(len(tokens))), text)]
        offsets = codes.offsets[i] if codes.offsets is not None else _offsets_from_tokens(text, tokens)
        if codes.special is not None:
            maskable = [not bool(flag) for flag in codes.special[i]]
        else:  # tokens found in the text
            maskable = [end > start for start, end in offsets]
        grouped = group_tokens(text, tokens, offsets, maskable, Granularity(self.granularity))
        return [
            (position, group, label)
            for position, (group, label) in enumerate(zip(grouped.token_groups, grouped.labels, strict=True))
        ]

    def _select(self, masked: torch.Tensor, n_qualifying: int, keys: list[str]) -> list[tuple[int, float]]:
        """The (element, activation) pairs to show from one concept's element values (-inf where they do not
        qualify): ranked, ties in dataset order, deduplicated."""
        if n_qualifying == 0:
            return []
        want = min(n_qualifying, self.k if not self.merge_duplicates else max(4 * self.k, 32))
        while True:
            top = torch.topk(masked, want)
            bound = top.values[-1]
            if want < n_qualifying and int((masked >= bound).sum()) > int((top.values >= bound).sum()):
                candidates = torch.nonzero(masked >= bound).flatten()  # ties of the bound left out by topk
                pairs = list(zip(masked[candidates].tolist(), candidates.tolist(), strict=True))
            else:
                pairs = list(zip(top.values.tolist(), top.indices.tolist(), strict=True))
            pairs.sort(key=lambda pair: (-pair[0], pair[1]))
            picked, seen = [], set()
            for value, e in pairs:
                if self.merge_duplicates:
                    if keys[e] in seen:
                        continue
                    seen.add(keys[e])
                picked.append((e, value))
                if len(picked) == self.k:
                    return picked
            if len(pairs) >= n_qualifying:
                return picked
            want = min(n_qualifying, 4 * want)

    def _example(
        self, codes: ConceptCodes, elements: _Elements, concept: int, e: int, activation: float
    ) -> ConceptExample:
        i, first, last = elements.input_index[e], elements.first[e], elements.last[e]
        if self.granularity == "sample":
            shown = codes.visible(i)
            if self.max_sample_tokens is None or len(shown) <= self.max_sample_tokens:
                context, _ = codes.context_window(concept, i, first, last, None)
            else:
                column = codes.codes[i][:, concept].clone()
                column[~codes.scored[i]] = float("-inf")
                peak = shown.index(int(column.argmax())) if int(column.argmax()) in shown else 0
                low = min(
                    max(0, peak - (self.max_sample_tokens - 1) // 2), len(shown) - self.max_sample_tokens
                )
                context, _ = codes.context_window(concept, i, first, last, None)
                context = context[low : low + self.max_sample_tokens]
            focus = (0, len(context))
        else:
            context, focus = codes.context_window(concept, i, first, last, self.context)
        return ConceptExample(
            concept=concept,
            activation=activation,
            text=elements.text[e],
            input_index=i,
            position=elements.position[e],
            context=context,
            focus=focus,
        )


def _element_max(codes: torch.Tensor, elements: _Elements) -> torch.Tensor:
    """`(n_elements, n_concepts)`: the max of each element's member rows of `codes` `(n_tokens, n_concepts)`."""
    out = torch.full((len(elements), codes.shape[1]), float("-inf"))
    if len(elements.members):
        rows = codes[elements.members]
        index = elements.segment[:, None].expand(-1, codes.shape[1])
        out.scatter_reduce_(0, index, rows, "amax", include_self=True)
    return out


def _offsets_from_tokens(text: str, tokens: list[str]) -> list[tuple[int, int]]:
    """Character spans of display tokens found in `text` left to right ((0, 0) for those not found)."""
    spans, cursor = [], 0
    for token in tokens:
        piece = token.strip()
        at = text.find(piece, cursor) if piece else -1
        if at < 0:
            spans.append((0, 0))
            continue
        spans.append((at, at + len(piece)))
        cursor = at + len(piece)
    return spans
