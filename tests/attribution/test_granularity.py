"""Elements from tokenizer offsets: words with several tokens, punctuation, sentences, special tokens."""

from __future__ import annotations

from interpreto import Granularity, Occlusion
from interpreto.attribution.granularity import group_tokens


def test_word_groups_multi_token_words_and_splits_punctuation(bert):
    model, tokenizer = bert
    out = Occlusion(model, tokenizer, progress=False)("The movie was unbelievable, really great!")[0]
    assert out.elements == ["The", "movie", "was", "unbelievable", ",", "really", "great", "!"]
    text = out.text
    assert [text[s:e] for s, e in out.offsets] == out.elements


def test_token_excludes_special_tokens_and_all_tokens_includes_them(bert):
    model, tokenizer = bert
    tokens = Occlusion(model, tokenizer, granularity="token", progress=False)("unbelievable!")[0]
    assert tokens.elements == ["un", "believ", "able", "!"]
    every = Occlusion(model, tokenizer, granularity=Granularity.ALL_TOKENS, progress=False)("unbelievable!")[
        0
    ]
    assert every.elements == ["[CLS]", "un", "believ", "able", "!", "[SEP]"]


def test_sentences(bert):
    model, tokenizer = bert
    out = Occlusion(model, tokenizer, granularity="sentence", progress=False)(
        "The movie was great. I loved it!\nReally"
    )[0]
    assert out.elements == ["The movie was great.", "I loved it!", "Really"]


def test_byte_level_tokens_and_apostrophes(gpt2):
    model, tokenizer = gpt2
    out = Occlusion(model, tokenizer, progress=False)("the dog's mat, ok", " the")[0]
    assert out.elements[: out.n_prompt_elements] == ["the", "dog's", "mat", ",", "ok"]


def test_token_spanning_two_words_merges_them():
    text = "end). next"
    tokens = ["end", ").", " next"]
    offsets = [(0, 3), (3, 5), (5, 10)]
    elements = group_tokens(text, tokens, offsets, [True, True, True], Granularity.WORD)
    assert elements.labels == ["end", ").", "next"]
    merged = group_tokens("ab.c", ["a", "b.c"], [(0, 1), (1, 4)], [True, True], Granularity.WORD)
    assert merged.labels == ["ab.c"] and merged.token_groups == [[0, 1]]


def test_whitespace_token_joins_the_next_word():
    elements = group_tokens("a  b", ["a", " ", "b"], [(0, 1), (1, 2), (3, 4)], [True] * 3, Granularity.WORD)
    assert elements.labels == ["a", "b"] and elements.token_groups == [[0], [1, 2]]


def test_word_labels_stop_at_the_tokens_of_the_text():
    """A punctuation run that continues into template markup shows only the text's characters."""
    text = "colour.<|im_end|>"
    tokens, offsets = ["colour", ".", "<|im_end|>"], [(0, 6), (6, 7), (7, 17)]
    elements = group_tokens(text, tokens, offsets, [True, True, False], Granularity.WORD)
    assert elements.labels == ["colour", "."]
