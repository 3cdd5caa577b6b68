"""ConceptCodes and TopKInputs: planted per-token codes, brute-force rankings from `get_activations`, display
strings without tokenizer marks, excluded positions, the duplicate and max rules, saving, errors, no side effects.

The planted explainer splits the model at its token embedding, whose output for a token depends on the token
alone, and looks each row up in a table: the concept codes of every token are known in advance.
"""

from __future__ import annotations

import pytest
import torch

from interpreto import ModelWithSplitPoints
from interpreto.concepts import ConceptExplainer, NeuronsAsConcepts, NotFittedError
from interpreto.concepts.interpret import ConceptCodes, ConceptExample, ContextToken, TopKInputs
from tests.conftest import assert_unchanged, snapshot
from tests.tolerance import assert_close_to_scale

TEXTS = [
    "The dog ran. The cat sat.",
    "The cat and a dog! Unbelievable cat.",
    "The bird ran away.",
    "A dog sat.",
]


class TokenTableConcepts(ConceptExplainer):
    """Codes looked up by token: an embedding row of token t gets `table[t]` (planted ground truth)."""

    def __init__(
        self, model_with_split_points, embeddings: torch.Tensor, table: torch.Tensor, split_point: str
    ):
        super().__init__(model_with_split_points, table.shape[1], split_point=split_point)
        self.embeddings, self.table = embeddings.detach().clone(), table

    def _fit(self, data, **kwargs):
        pass

    def _encode(self, rows):
        ids = torch.cdist(rows, self.embeddings).argmin(dim=1)
        return self.table[ids]

    def _dictionary(self):
        return torch.eye(self.nb_concepts, self.embeddings.shape[1])


def planted(
    model, tokenizer, split_point: str, values: dict[str, dict[int, float]], default=(0.0, 0.0, -2.0)
):
    """A fitted TokenTableConcepts: `values[token][concept]` (raw token strings), `default[concept]` elsewhere."""
    splitter = ModelWithSplitPoints(model, split_points=split_point, tokenizer=tokenizer, progress=False)
    embeddings = model.get_input_embeddings().weight
    table = torch.tensor(default).repeat(embeddings.shape[0], 1)
    for token, concepts in values.items():
        for concept, value in concepts.items():
            table[tokenizer.convert_tokens_to_ids(token), concept] = value
    explainer = TokenTableConcepts(splitter, embeddings, table, split_point)
    return explainer.fit(splitter.get_activations(TEXTS, granularity="all_tokens"))


# concept 0: planted values; concept 1: never fires; concept 2: negative everywhere (-2 by default), least
# negative on ' dog'
GPT2_VALUES = {
    "The": {0: 10.0, 2: -1.0},
    "Ġdog": {0: 2.0, 2: -0.5},
    "at": {0: 3.0, 2: -1.0},
    "Ġc": {0: 1.0, 2: -1.0},
    "ble": {0: 4.0, 2: -1.0},
    "Ġr": {0: 0.5, 2: -1.0},
}


@pytest.fixture(scope="module")
def gpt2_planted(gpt2):
    return planted(*gpt2, "transformer.wte", GPT2_VALUES)


def summary(examples: list[ConceptExample]) -> list[tuple]:
    return [(e.text, e.input_index, e.position, e.activation) for e in examples]


def test_codes_are_the_planted_table_and_position_zero_is_not_scored(gpt2_planted, gpt2):
    _, tokenizer = gpt2
    codes = ConceptCodes.compute(gpt2_planted, TEXTS, progress=False)
    for k, text in enumerate(TEXTS):
        raw = tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])
        expected = torch.tensor([GPT2_VALUES.get(token, {}).get(0, 0.0) for token in raw])
        assert torch.equal(codes.codes[k][:, 0], expected)
        assert codes.scored[k].tolist() == [False] + [True] * (len(raw) - 1)
    values, where = codes.values(0)
    assert values.tolist()[:3] == [2.0, 0.5, 0.0] and where.tolist()[:3] == [[0, 1], [0, 2], [0, 3]]


def test_token_topk_is_the_planted_ranking_with_duplicates_merged(gpt2_planted):
    top = TopKInputs(gpt2_planted, k=10, context=2, progress=False).interpret("all", inputs=TEXTS)
    # 'The' at position 0 of every text is excluded; the one after "ran. " (text 0, token 6) is not
    assert summary(top[0]) == [
        ("The", 0, 6, 10.0),
        ("ble", 1, 18, 4.0),
        ("at", 0, 8, 3.0),
        ("dog", 0, 1, 2.0),
        ("c", 0, 7, 1.0),
        ("r", 0, 2, 0.5),
    ]
    assert top[1] == []  # never fires: no zero-activation filler
    assert top[2] == []  # only negative values
    ble = top[0][1]
    assert [(t.text, t.activation) for t in ble.context] == [
        ("v", 0),
        ("a", 0),
        ("ble", 4),
        (" c", 1),
        ("at", 3),
    ]
    assert ble.focus == (2, 3)
    dog = top[0][3]  # its context reaches position 0, shown but marked as not scored
    assert dog.context[0] == ContextToken("The", 10.0, scored=False)
    assert [t.text for t in dog.context] == ["The", " dog", " r", "an"] and dog.focus == (1, 2)


def test_keeping_duplicates_and_signed_threshold(gpt2_planted):
    codes = ConceptCodes.compute(gpt2_planted, TEXTS, progress=False)
    every = TopKInputs(gpt2_planted, k=10, merge_duplicates=False).interpret(0, inputs=codes)[0]
    assert summary(every)[:7] == [
        ("The", 0, 6, 10.0),
        ("ble", 1, 18, 4.0),
        ("at", 0, 8, 3.0),
        ("at", 0, 10, 3.0),
        ("at", 1, 2, 3.0),
        ("at", 1, 20, 3.0),
        ("at", 3, 3, 3.0),
    ]
    assert [e.text for e in every[7:]] == ["dog", "dog", "dog"]
    negative = TopKInputs(gpt2_planted, k=2, min_activation=-1.5).interpret([2], inputs=codes)[2]
    assert summary(negative) == [("dog", 0, 1, -0.5), ("r", 0, 2, -1.0)]


def test_word_sentence_and_sample_take_the_max_over_scored_tokens(gpt2_planted):
    codes = ConceptCodes.compute(gpt2_planted, TEXTS, progress=False)
    words = TopKInputs(gpt2_planted, k=10, granularity="word", context=1).interpret(0, inputs=codes)[0]
    # first words hold only position 0 and are skipped; "Unbelievable" = max over its 10 tokens = 'ble'
    assert summary(words) == [
        ("The", 0, 4, 10.0),
        ("Unbelievable", 1, 6, 4.0),
        ("cat", 0, 5, 3.0),
        ("sat", 0, 6, 3.0),
        ("dog", 0, 1, 2.0),
        ("ran", 0, 2, 0.5),
    ]
    unbelievable = words[1]
    assert "".join(t.text for t in unbelievable.context[slice(*unbelievable.focus)]) == " Unbelievable"
    assert [t.text for t in unbelievable.context[: unbelievable.focus[0]]] == ["!"]
    sentences = TopKInputs(gpt2_planted, k=10, granularity="sentence").interpret(0, inputs=codes)[0]
    assert summary(sentences) == [
        ("The cat sat.", 0, 1, 10.0),
        ("Unbelievable cat.", 1, 1, 4.0),
        ("The cat and a dog!", 1, 0, 3.0),
        ("A dog sat.", 3, 0, 3.0),
        ("The dog ran.", 0, 0, 2.0),  # its 'The' (10) is position 0: not counted
        ("The bird ran away.", 2, 0, 0.5),
    ]
    samples = TopKInputs(gpt2_planted, k=10, granularity="sample").interpret(0, inputs=codes)[0]
    assert summary(samples) == [
        (TEXTS[0], 0, 0, 10.0),
        (TEXTS[1], 1, 0, 4.0),
        (TEXTS[3], 3, 0, 3.0),
        (TEXTS[2], 2, 0, 0.5),
    ]
    assert "".join(t.text for t in samples[0].context) == TEXTS[0] and samples[0].focus == (0, 12)
    short = TopKInputs(gpt2_planted, k=1, granularity="sample", max_sample_tokens=4).interpret(
        0, inputs=codes
    )[0]
    assert [t.text for t in short[0].context] == [" ", "The", " c", "at"]  # centred on 'The' (token 6)


@pytest.fixture(scope="module")
def gpt2_neurons(gpt2):
    model, tokenizer = gpt2
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    return NeuronsAsConcepts(splitter).fit(splitter.get_activations(TEXTS))


def test_token_topk_matches_a_brute_force_over_get_activations(gpt2_neurons):
    splitter = gpt2_neurons.model_with_split_points
    acts = splitter.get_activations(TEXTS, granularity="all_tokens")["transformer.h.1"]
    codes = ConceptCodes.compute(gpt2_neurons, TEXTS, progress=False)
    top = TopKInputs(gpt2_neurons, k=5).interpret("all", inputs=codes)
    for concept in range(32):
        rows = [
            (float(acts.activations[r, concept]), i, j, label.strip() or label)
            for r, (i, j, label) in enumerate(acts.index)
            if j > 0 and acts.activations[r, concept] > 0
        ]
        rows.sort(key=lambda row: -row[0])  # stable: ties keep dataset order
        expected, seen = [], set()
        for value, i, j, label in rows:
            if label.strip() not in seen and len(expected) < 5:
                seen.add(label.strip())
                expected.append((label, i, j, value))
        got = summary(top[concept])
        assert [row[:3] for row in got] == [row[:3] for row in expected], concept
        assert_close_to_scale([row[3] for row in got], [row[3] for row in expected])
        for example in top[concept]:  # context activations are the token activations
            column = codes.codes[example.input_index][:, concept]
            positions = range(max(0, example.position - 8), min(len(column), example.position + 9))
            assert [t.activation for t in example.context] == [float(column[p]) for p in positions]


@pytest.mark.parametrize("granularity", ["word", "sentence", "sample"])
def test_elements_match_max_pooled_get_activations(gpt2_neurons, granularity):
    # without the position-0 exclusion, an element's activation is the max pooling of its tokens' neurons
    splitter = gpt2_neurons.model_with_split_points
    pooled = splitter.get_activations(TEXTS, granularity=granularity, pooling="max")["transformer.h.1"]
    codes = ConceptCodes.compute(gpt2_neurons, TEXTS, exclude_first_token=False, progress=False)
    top = TopKInputs(gpt2_neurons, k=4, granularity=granularity, merge_duplicates=False).interpret(
        [0, 7, 31], inputs=codes
    )
    for concept in (0, 7, 31):
        rows = [
            (float(pooled.activations[r, concept]), i, j, label)
            for r, (i, j, label) in enumerate(pooled.index)
            if pooled.activations[r, concept] > 0
        ]
        rows.sort(key=lambda row: -row[0])
        got = summary(top[concept])
        assert [row[:3] for row in got] == [(label, i, j) for _, i, j, label in rows[:4]]
        assert_close_to_scale([row[3] for row in got], [row[0] for row in rows[:4]])


def test_special_tokens_never_appear(llama, bert):
    model, tokenizer = llama
    explainer = planted(
        model, tokenizer, "model.embed_tokens", {"<s>": {0: 100.0}, "The": {0: 5.0}, "Ġdog": {0: 1.0}}
    )
    codes = ConceptCodes.compute(explainer, TEXTS, exclude_first_token=False, progress=False)
    assert codes.tokens[0][:3] == ["<s>", "The", " dog"] and codes.scored[0][:2].tolist() == [False, True]
    top = TopKInputs(explainer, k=5, context=3).interpret(0, inputs=codes)[0]
    assert summary(top) == [("The", 0, 1, 5.0), ("dog", 0, 2, 1.0)]
    assert [t.text for t in top[0].context] == ["The", " dog", " r", "an"]  # '<s>' is left out of contexts
    model, tokenizer = bert
    values = {"[CLS]": {0: 100.0}, "[SEP]": {0: 100.0}, "dog": {0: 2.0}}
    explainer = planted(model, tokenizer, "bert.embeddings.word_embeddings", values)
    top = TopKInputs(explainer, k=5, context=20, progress=False).interpret(0, inputs=["A dog sat."])[0]
    assert summary(top) == [("dog", 0, 2, 2.0)]
    assert [t.text for t in top[0].context] == ["A", " dog", " s", "a", "t", "."]


def test_display_strings_have_no_tokenizer_marks(gpt2, bert):
    text = "The dog, café 🙂 ran  away.\nUnbelievable!"
    for (model, tokenizer), split in ((gpt2, "transformer.wte"), (bert, "bert.embeddings.word_embeddings")):
        splitter = ModelWithSplitPoints(model, split_points=split, tokenizer=tokenizer, progress=False)
        explainer = NeuronsAsConcepts(splitter).fit(splitter.get_activations([text]))
        codes = ConceptCodes.compute(explainer, [text], progress=False)
        shown = [
            token for token, special in zip(codes.tokens[0], codes.special[0], strict=True) if not special
        ]
        assert not any(mark in token for token in shown for mark in ("Ġ", "Ċ", "##", "▁", "\ufffd"))
        if split == "transformer.wte":  # byte-level: the text comes back, an emoji's last byte token shows it
            assert "".join(shown) == text
            assert shown[6:13] == ["", "é", " ", "", "", "", "🙂"]
            assert codes.token_label(0, 6) == "é"
        else:  # WordPiece: the original characters (case and accents), '[UNK]' being special
            assert codes.tokens[0][:5] == ["[CLS]", "The", " dog", ",", " c"]
            assert "".join(codes.tokens[0][1:-1]).replace("🙂", "") == text.replace("🙂", "")


def test_chunked_compute_save_and_load(gpt2_neurons, tmp_path):
    model_splitter = gpt2_neurons.model_with_split_points
    small = ModelWithSplitPoints(
        model_splitter.model, 1, tokenizer=model_splitter.tokenizer, batch_size=3, progress=False
    )
    chunked = NeuronsAsConcepts(small).fit(small.get_activations(TEXTS))
    whole = ConceptCodes.compute(gpt2_neurons, TEXTS, progress=False)
    parts = ConceptCodes.compute(chunked, TEXTS, progress=False)
    assert parts.tokens == whole.tokens and parts.offsets == whole.offsets
    for a, b in zip(parts.codes, whole.codes, strict=True):
        assert_close_to_scale(a, b)
    loaded = ConceptCodes.load(whole.save(tmp_path / "codes"))
    assert loaded.texts == whole.texts and loaded.tokens == whole.tokens and loaded.offsets == whole.offsets
    assert all(torch.equal(a, b) for a, b in zip(loaded.codes, whole.codes, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(loaded.scored, whole.scored, strict=True))
    topk = TopKInputs(gpt2_neurons, k=3, granularity="word")
    assert topk.interpret("all", inputs=loaded) == topk.interpret("all", inputs=whole)
    example = topk.interpret(4, inputs=whole)[4][0]
    assert ConceptExample.from_dict(example.to_dict()) == example


def test_hand_built_codes_without_offsets_group_words():
    codes = ConceptCodes(
        texts=["big dogs run"],
        tokens=[["big", " do", "gs", " run"]],
        codes=[torch.tensor([[9.0], [1.0], [2.0], [0.5]])],
        scored=[torch.tensor([False, True, True, True])],
    )
    explainer = NeuronsAsConcepts(None).fit(torch.zeros(1, 1))
    words = TopKInputs(explainer, granularity="word").interpret(0, inputs=codes)[0]
    assert summary(words) == [("dogs", 0, 1, 2.0), ("run", 0, 2, 0.5)]


def test_errors_name_the_argument(gpt2, gpt2_planted):
    model, tokenizer = gpt2
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    with pytest.raises(NotFittedError, match="fit"):
        TopKInputs(NeuronsAsConcepts(splitter)).interpret(inputs=TEXTS)
    topk = TopKInputs(gpt2_planted)
    with pytest.raises(ValueError, match=r"concepts.*\[0, 3\)"):
        topk.interpret(3, inputs=TEXTS)
    with pytest.raises(ValueError, match=r"concepts.*\[0, 3\)"):
        topk.interpret([0, -1], inputs=TEXTS)
    with pytest.raises(ValueError, match="texts is empty"):
        topk.interpret(inputs=[])
    with pytest.raises(ValueError, match="inputs"):
        topk.interpret(0)
    with pytest.raises(ValueError, match="granularity"):
        TopKInputs(gpt2_planted, granularity="paragraph")
    with pytest.raises(ValueError, match="k must"):
        TopKInputs(gpt2_planted, k=0)
    with pytest.raises(ValueError, match="model_with_split_points"):
        ConceptCodes.compute(NeuronsAsConcepts(None).fit(torch.zeros(2, 32)), TEXTS)


def test_model_is_left_unchanged(gpt2):
    model, tokenizer = gpt2
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    explainer = NeuronsAsConcepts(splitter).fit(splitter.get_activations(TEXTS))
    model.transformer.h[0].train()
    before = snapshot(model, tokenizer)
    try:
        for granularity in ("token", "word", "sample"):
            TopKInputs(explainer, k=2, granularity=granularity).interpret("all", inputs=TEXTS)
        assert_unchanged(before, snapshot(model, tokenizer))
    finally:
        model.eval()
