"""Display text of tokens: what a reader sees, without the tokenizer's markers ('Ġ', '▁', '##').

Tokens of a text take their characters from the text itself through the tokenizer's character offsets: a token
shows the characters it covers, plus the whitespace between it and the previous token (so a leading space is a
space and the tokens of a text join back into it, up to the whitespace no token covers). Byte-level BPE splits a
multi-byte character (an accent, an emoji) into several tokens that share its offsets: the last of them, the
one that completes the character, shows it and the others show `""`. Tokens without characters (BOS, `[CLS]`)
and vocabulary entries (the logit lens) are shown by `token_text`.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

_SENTENCEPIECE_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's `bytes_to_unicode`: the character byte-level BPE shows for each byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(char): byte for byte, char in zip(printable, chars, strict=True)}


def _decoder_types(tokenizer: Any) -> set[str]:
    """The `type` names in the fast tokenizer's decoder (nested sequences included)."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    if decoder is None:
        return set()
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "type" in node:
                found.add(str(node["type"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(decoder.__getstate__()))
    return found


def token_texts(tokenizer: Any, token_ids: list[int]) -> list[str]:
    """Display text of vocabulary entries, each read alone.

    Byte-level BPE entries are turned back into their bytes (`'Ġdog'` -> `' dog'`); bytes that are not a whole
    UTF-8 character are shown escaped (`'\\xe2'`). SentencePiece's `'▁'` becomes a space and its byte tokens
    (`<0x0A>`) their character; WordPiece's continuation mark `'##'` is dropped. Special tokens keep their name.

    Examples:
        >>> from interpreto.zoo import tiny_gpt2
        >>> _, tokenizer = tiny_gpt2()
        >>> token_texts(tokenizer, tokenizer("The dog")["input_ids"])
        ['The', ' dog']
    """
    raws = tokenizer.convert_ids_to_tokens(list(token_ids))
    special = set(getattr(tokenizer, "all_special_ids", []))
    byte_level = "ByteLevel" in _decoder_types(tokenizer)
    table = _byte_decoder()
    texts = []
    for token_id, raw in zip(token_ids, raws, strict=True):
        raw = "" if raw is None else str(raw)
        if token_id in special:
            texts.append(raw)
        elif byte_level and raw and all(char in table for char in raw):
            texts.append(bytes(table[char] for char in raw).decode("utf-8", errors="backslashreplace"))
        elif match := _SENTENCEPIECE_BYTE.match(raw):
            texts.append(bytes([int(match.group(1), 16)]).decode("utf-8", errors="backslashreplace"))
        else:
            text = raw.replace("▁", " ")
            texts.append(text[2:] if text.startswith("##") and len(text) > 2 else text)
    return texts


def display_tokens(
    tokenizer: Any, text: str, token_ids: list[int], offsets: list[tuple[int, int]]
) -> list[str]:
    """Display text of each token of `text` from its character offsets (see the module's docstring).

    Examples:
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> _, tokenizer = tiny_bert_classifier()
        >>> enc = tokenizer("Unbelievable, truly!", return_offsets_mapping=True)
        >>> display_tokens(tokenizer, "Unbelievable, truly!", enc["input_ids"], enc["offset_mapping"])
        ['[CLS]', 'Un', 'believ', 'able', ',', ' t', 'r', 'u', 'ly', '!', '[SEP]']
    """
    no_text = [k for k, (start, end) in enumerate(offsets) if end <= start]
    named = dict(zip(no_text, token_texts(tokenizer, [token_ids[k] for k in no_text]), strict=True))
    shown: list[str] = []
    cursor = 0
    for k, (start, end) in enumerate(offsets):
        if k in named:
            shown.append(named[k])
            continue
        if k + 1 < len(offsets) and tuple(offsets[k + 1]) == (start, end):
            shown.append("")  # a piece of a character that a following token completes
            continue
        if end <= cursor:
            shown.append("")
            continue
        begin = max(start, cursor)
        if cursor < start and text[cursor:start].isspace():
            begin = cursor
        shown.append(text[begin:end])
        cursor = end
    return shown
