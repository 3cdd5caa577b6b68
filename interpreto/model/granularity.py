"""Granularity: how tokens are grouped into the elements a reader sees.

Words and sentences come from the character offsets of a fast tokenizer: a word is a run of word characters
(apostrophes inside words kept, as in "don't") or a run of punctuation; a sentence ends at `.`, `!`, `?` or a
line break. A token that overlaps two words (a byte-level BPE token such as `")."`) merges them into one element,
since a token cannot be split. Additive methods sum token scores into their element, so completeness holds at
every granularity; perturbation methods perturb the tokens of an element together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Granularity(str, Enum):
    """The unit an attribution is given for.

    Attributes:
        ALL_TOKENS: every token, special tokens (`[CLS]`, BOS, chat-template markup) included.
        TOKEN: every token of the text, special tokens excluded.
        WORD: words and punctuation runs, from the tokenizer's character offsets.
        SENTENCE: sentences, split after `.`, `!`, `?` and at line breaks.

    Examples:
        >>> from interpreto import Granularity
        >>> Granularity("word") is Granularity.WORD
        True
    """

    ALL_TOKENS = "all_tokens"
    TOKEN = "token"
    WORD = "word"
    SENTENCE = "sentence"


_WORD_PATTERN = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]+")
_SENTENCE_PATTERN = re.compile(r"[^\n]+?(?:[.!?]+(?=\s|$)|$)|[^\n]+", re.MULTILINE)


@dataclass
class Elements:
    """Elements of one text: their labels, character spans and the token positions each one covers."""

    labels: list[str]
    spans: list[tuple[int, int]]
    token_groups: list[list[int]]


def _text_spans(text: str, granularity: Granularity) -> list[tuple[int, int]]:
    pattern = _WORD_PATTERN if granularity is Granularity.WORD else _SENTENCE_PATTERN
    spans = []
    for match in pattern.finditer(text):
        start, end = match.span()
        stripped = match.group().strip()
        if not stripped:
            continue
        start += len(match.group()) - len(match.group().lstrip())
        spans.append((start, start + len(stripped)))
    return spans


def _token_label(text: str, token: str, span: tuple[int, int]) -> str:
    start, end = span
    return text[start:end] if end > start else token


def group_tokens(
    text: str,
    tokens: list[str],
    offsets: list[tuple[int, int]],
    maskable: list[bool],
    granularity: Granularity,
) -> Elements:
    """Groups token positions into elements.

    Args:
        text: the text the offsets refer to.
        tokens: the token strings (used as labels when a token has no characters, e.g. special tokens).
        offsets: `(start, end)` character span of each token in `text`.
        maskable: False for special tokens and template markup, which only `ALL_TOKENS` shows.
        granularity: the unit to group into.

    Returns:
        The elements, in text order, each with its label, character span and token positions.
    """
    if granularity is Granularity.ALL_TOKENS:
        positions = list(range(len(tokens)))
    else:
        positions = [i for i, keep in enumerate(maskable) if keep]
    if granularity in (Granularity.ALL_TOKENS, Granularity.TOKEN):
        return Elements(
            labels=[_token_label(text, tokens[i], offsets[i]) for i in positions],
            spans=[tuple(offsets[i]) for i in positions],
            token_groups=[[i] for i in positions],
        )
    return _group_by_spans(text, tokens, offsets, positions, _text_spans(text, granularity))


def _group_by_spans(
    text: str,
    tokens: list[str],
    offsets: list[tuple[int, int]],
    positions: list[int],
    spans: list[tuple[int, int]],
) -> Elements:
    """Assigns tokens to the text spans they overlap, merging spans that share a token."""
    # parent[k] is the span that span k was merged into (union-find over spans)
    parent = list(range(len(spans)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    token_span: dict[int, int] = {}
    orphans = []
    for i in positions:
        start, end = offsets[i]
        hits = [k for k, (s, e) in enumerate(spans) if s < end and start < e]
        if not hits:
            orphans.append(i)
            continue
        for k in hits[1:]:
            parent[root(k)] = root(hits[0])
        token_span[i] = hits[0]
    for i in orphans:  # whitespace-only tokens (e.g. a lone "▁") join the next span, else the previous one
        following = [k for k, (s, _) in enumerate(spans) if s >= offsets[i][1]]
        if following:
            token_span[i] = following[0]
        elif spans:
            token_span[i] = len(spans) - 1
    groups: dict[int, list[int]] = {}
    for i in positions:
        if i in token_span:
            groups.setdefault(root(token_span[i]), []).append(i)
    labels, element_spans, token_groups = [], [], []
    for key, members in sorted(groups.items(), key=lambda item: min(item[1])):
        merged = [k for k in range(len(spans)) if root(k) == key]
        start, end = min(spans[k][0] for k in merged), max(spans[k][1] for k in merged)
        # clip to the tokens' own characters: a punctuation run may extend into markup that is not text
        # (".<|" where "<|im_end|>" is a template token)
        start = max(start, min(offsets[i][0] for i in members))
        end = min(end, max(offsets[i][1] for i in members))
        labels.append(text[start:end])
        element_spans.append((start, end))
        token_groups.append(members)
    return Elements(labels=labels, spans=element_spans, token_groups=token_groups)
