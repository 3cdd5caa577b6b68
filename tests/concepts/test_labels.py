"""LLMLabels: planted colour/animal concepts, the prompt's examples and highlights, seeding, batching, caching,
label parsing, texts through an explainer, errors, and a SmolLM2 smoke run.

The planted ConceptCodes: sentences of filler words with colour and animal words; concept 0 fires on colour words
only (activation 0.5-1.0), concept 1 on animal words only, concept 2 never. The stand-in LLM (`category_judge`)
labels a concept by the category of most of its highlighted words and answers the scorers' questions by whether
the words it is asked about belong to the label's category.
"""

from __future__ import annotations

import re
import time
import warnings

import numpy as np
import pytest
import torch

from interpreto.concepts.interpret import ConceptCodes
from interpreto.concepts.interpret.labels import LLMLabels, sample_examples
from interpreto.concepts.interpret.prompts import parse_label, render
from interpreto.model.llm import CallableLLM, ChatLLM, LocalChatLLM

CATEGORIES = {
    "colours": {"red", "blue", "green", "yellow", "purple", "orange", "pink", "brown"},
    "animals": {"dog", "cat", "horse", "bird", "fox", "cow", "sheep", "mouse"},
}
FILLER = ["the", "a", "of", "and", "then", "we", "saw", "it", "was", "near", "old", "house", "road", "over"]


def colour_codes(n_texts: int = 40, seed: int = 0) -> ConceptCodes:
    """Planted codes (module docstring): 12-word sentences starting with 'The', position 0 not scored."""
    rng = np.random.default_rng(seed)
    colours, animals = sorted(CATEGORIES["colours"]), sorted(CATEGORIES["animals"])
    texts, tokens, codes, scored = [], [], [], []
    for k in range(n_texts):
        words = list(rng.choice(FILLER, size=11))
        n_colours = 0 if k % 3 == 0 else int(rng.integers(1, 3))
        for slot in rng.choice(11, size=n_colours, replace=False):
            words[slot] = str(rng.choice(colours))
        for slot in rng.choice(11, size=2, replace=False):
            if words[slot] not in CATEGORIES["colours"] and rng.random() < 0.6:
                words[slot] = str(rng.choice(animals))
        pieces = ["The"] + [f" {w}" for w in words]
        values = torch.zeros(len(pieces), 3)
        for j, piece in enumerate(pieces):
            word = piece.strip()
            if word in CATEGORIES["colours"]:
                values[j, 0] = float(rng.uniform(0.5, 1.0))
            if word in CATEGORIES["animals"]:
                values[j, 1] = float(rng.uniform(0.5, 1.0))
        texts.append("".join(pieces))
        tokens.append(pieces)
        codes.append(values)
        scored.append(torch.tensor([False] + [True] * (len(pieces) - 1)))
    return ConceptCodes(texts=texts, tokens=tokens, codes=codes, scored=scored)


def _field(content: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*)$", content, re.MULTILINE)
    return match.group(1) if match else ""


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def category_judge(conversation: list[dict]) -> str:
    """The stand-in LLM (module docstring): labels, detection, fuzzing and simulation answers."""
    content = conversation[-1]["content"]
    label = _field(content, "Description")
    if not label:  # a labelling prompt: the category of most highlighted words
        marked = _words(" ".join(re.findall(r"<<(.*?)>>", content)))
        best = max(CATEGORIES, key=lambda name: len(marked & CATEGORIES[name]))
        return f"Label: {best}"
    category = CATEGORIES.get(label, set())
    if "Tokens:\n" in content:
        shown = content.split("Tokens:\n")[1].split("\n\n")[0].splitlines()
        return "\n".join(f"{t}\t{10 if t.lower() in category else 0}" for t in shown)
    if "highlighted tokens" in content:
        asked = _words(" ".join(re.findall(r"<<(.*?)>>", _field(content, "Text"))))
    else:
        asked = _words(_field(content, "Text"))
    return "yes" if asked & category else "no"


class CountingLLM(ChatLLM):
    """Counts `complete` calls and conversations."""

    def __init__(self, fn):
        self.fn, self.calls, self.conversations = fn, 0, 0

    def complete(self, conversations, max_new_tokens=64):
        self.calls += 1
        self.conversations += len(conversations)
        return [self.fn(c) for c in conversations]


@pytest.fixture(scope="module")
def codes():
    return colour_codes()


def test_planted_labels(codes):
    labels = LLMLabels(None, CallableLLM(category_judge), progress=False).label(codes, [0, 1])
    assert labels == {0: "colours", 1: "animals"}


def test_prompt_shows_the_top_examples_highlighted(codes):
    labeller = LLMLabels(
        None, CallableLLM(category_judge), k_examples=5, n_quantiles=2, n_random=1, context=3
    )
    examples = labeller.examples(codes, 0)[0]
    user = labeller.conversations(codes, 0)[0][-1]["content"]
    # the 5 top examples: the 5 highest colour tokens, one per colour word, by decreasing activation
    values, where = codes.values(0)
    order = torch.argsort(values, descending=True, stable=True).tolist()
    expected, seen = [], set()
    for flat in order:
        word = codes.token_label(*where[flat].tolist())
        if word not in seen:
            seen.add(word)
            expected.append(word)
    assert [e.text for e in examples.top] == expected[:5]
    assert [e.activation for e in examples.top] == sorted((e.activation for e in examples.top), reverse=True)
    lines = [line for line in user.splitlines() if line.startswith("Example ")]
    assert len(lines) == 5 + 2
    for k, example in enumerate(examples.top):
        # the example's word is highlighted (consecutive colour words share one pair of marks), every
        # highlighted word is a colour, every colour word in the line is highlighted
        marked = re.findall(r"<<(.*?)>>", lines[k])
        assert any(example.text in m.split() for m in marked)
        assert all(w in CATEGORIES["colours"] for m in marked for w in m.split())
        plain = lines[k].split(": ", 1)[1].replace("<<", "").replace(">>", "")
        assert sum(w in CATEGORIES["colours"] for w in plain.split()) == sum(len(m.split()) for m in marked)
    # the quantile examples: one from the lower half of the other colour tokens, one from the upper half
    assert len(examples.quantile) == 2
    assert examples.quantile[0].activation <= examples.quantile[1].activation


def test_show_activations(codes):
    labeller = LLMLabels(None, CallableLLM(category_judge), k_examples=1, n_random=0, show_activations=True)
    line = labeller.conversations(codes, 0)[0][-1]["content"].splitlines()[0]
    examples = labeller.examples(codes, 0)[0]
    top, peak = examples.top[0], float(codes.values(0)[0].max())
    shown = [
        f"{t.text.strip()}: {round(10 * t.activation / peak)}"
        for t in top.context
        if t.activation > 0.1 * peak
    ]
    assert line.endswith(f"({', '.join(shown)})")
    assert f"{top.text}: 10" in shown  # the top example holds the peak


def test_render_keeps_spaces_outside_highlights():
    from interpreto.concepts.interpret import ContextToken

    tokens = [ContextToken(t, 0.0) for t in ["The", " red", " and", " blue", " car", "\n", " sat"]]
    assert (
        render(tokens, [False, True, False, True, True, False, False]) == "The <<red>> and <<blue car>> sat"
    )


def test_seeded_sampling(codes):
    make = lambda seed: LLMLabels(None, CallableLLM(category_judge), seed=seed, progress=False)  # noqa: E731
    first, again, other = make(0), make(0), make(1)
    assert first.conversations(codes) == again.conversations(codes)
    positions = lambda labeller: [  # noqa: E731
        (e.input_index, e.position) for e in labeller.examples(codes, 0)[0].quantile
    ]
    assert positions(first) == positions(again)
    assert positions(first) != positions(other)
    assert [e.position for e in first.examples(codes, 0)[0].top] == [
        e.position for e in other.examples(codes, 0)[0].top
    ]
    # a concept's examples do not depend on which other concepts are asked for
    assert first.conversations(codes, [0, 1])[0] == first.conversations(codes, 0)[0]


def test_one_batched_call_and_cache(codes):
    llm = CountingLLM(category_judge)
    labeller = LLMLabels(None, llm, progress=False)
    assert labeller.label(codes, [0, 1]) == {0: "colours", 1: "animals"}
    assert (llm.calls, llm.conversations) == (1, 2)
    assert labeller.label(codes, [1, 0]) == {1: "animals", 0: "colours"}
    assert (llm.calls, llm.conversations) == (1, 2)  # cache hits: no new call
    labeller.k_examples = 3  # another prompt for each concept
    labeller.label(codes, 0)
    assert (llm.calls, llm.conversations) == (2, 3)
    batched = LLMLabels(None, CountingLLM(category_judge), batch_size=1, progress=False)
    batched.label(codes, [0, 1])
    assert (batched.llm.calls, batched.llm.conversations) == (2, 2)


def test_never_firing_concept_left_out(codes):
    llm = CountingLLM(category_judge)
    with pytest.warns(UserWarning, match=r"concepts \[2\] never fire"):
        labels = LLMLabels(None, llm, progress=False).label(codes, "all")
    assert labels == {0: "colours", 1: "animals"}
    assert sample_examples(codes, 2, 5, 2, 1, 3).activating == []


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("Label: colour words", "colour words"),
        ('Here it is.\nLabel: "Colour words."', "Colour words"),
        ("The label is: colours!", "colours"),
        ("[EXPLANATION]: Names of animals", "Names of animals"),
        ("**animal names**\nThey are all animals.", "animal names"),
        ("Label:\ncolours", "colours"),
        ("Label: colours\nExplanation: all are colours", "colours"),
        ("", ""),
    ],
)
def test_parse_label(answer, label):
    assert parse_label(answer) == label


def test_unreadable_answer_warns(codes):
    with pytest.warns(UserWarning, match="hold no label"):
        labels = LLMLabels(None, CallableLLM(lambda c: '""'), progress=False).label(codes, 0)
    assert labels == {0: ""}


def test_texts_through_an_explainer(gpt2):
    from interpreto import ModelWithSplitPoints
    from interpreto.concepts import NeuronsAsConcepts

    model, tokenizer = gpt2
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    texts = ["The red dog ran.", "A blue cat sat down."]
    neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(texts))
    llm = CountingLLM(lambda c: "Label: something")
    labeller = LLMLabels(neurons, llm, k_examples=3, n_random=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_texts = labeller.label(texts, [0, 1, 2])
        codes = ConceptCodes.compute(neurons, texts, progress=False)
        assert labeller.conversations(texts, [0, 1, 2]) == labeller.conversations(codes, [0, 1, 2])
        assert labeller.label(codes, [0, 1, 2]) == from_texts
    assert llm.calls == 1 and set(from_texts.values()) <= {"something"}


def test_errors(codes):
    labeller = LLMLabels(None, CallableLLM(category_judge), progress=False)
    with pytest.raises(ValueError, match="concepts"):
        labeller.label(codes, 3)
    with pytest.raises(ValueError, match="concepts"):
        labeller.label(codes, "some")
    with pytest.raises(ValueError, match="inputs: texts need an explainer"):
        labeller.label(["The red car."], 0)
    with pytest.raises(ValueError, match="inputs"):
        labeller.label([], 0)
    with pytest.raises(ValueError, match="k_examples"):
        LLMLabels(None, CallableLLM(category_judge), k_examples=0)
    with pytest.raises(ValueError, match="threshold"):
        LLMLabels(None, CallableLLM(category_judge), threshold=1.5)
    with pytest.raises(TypeError, match="llm"):
        LLMLabels(None, 3)


def test_smollm2_label():
    from interpreto.zoo import smollm2

    model, tokenizer = smollm2()
    llm = LocalChatLLM(model, tokenizer)
    start = time.perf_counter()
    labeller = LLMLabels(None, llm, k_examples=6, n_quantiles=0, n_random=0, context=3, max_new_tokens=10)
    labels = labeller.label(colour_codes(), 0)
    elapsed = time.perf_counter() - start
    print(
        f"SmolLM2 label for the colour concept: {labels[0]!r} (answer {labeller.answers[0]!r}, {elapsed:.1f} s)"
    )
    assert isinstance(labels[0], str) and labels[0].strip()
    assert len(labels[0]) <= 80
