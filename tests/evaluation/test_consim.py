"""ConSim: scores of deterministic stand-in simulators against hand computations, the learning / evaluation split,
the expected answers (the model's predictions on the evaluation samples), answer parsing, prompt-only mode, the
loopback endpoint, and a SmolLM2 smoke run."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from interpreto import ModelWithSplitPoints
from interpreto.concepts import NeuronsAsConcepts
from interpreto.evaluation import ConSim
from interpreto.evaluation.concepts.consim import t_interval
from interpreto.evaluation.concepts.consim_inputs import sample_concept_activations
from interpreto.evaluation.concepts.consim_prompts import concept_levels, parse_answer, render
from interpreto.model.llm import CallableLLM, OpenAIChatLLM
from interpreto.zoo import tiny_bert_classifier
from tests.model.fake_chat import serve_chat
from tests.tolerance import assert_close_to_scale

CLASSES = ["negative", "very negative", "positive"]
LABELS = {0: "praise", 1: "complaint", 2: "sarcasm"}
TABLE = {"praise": "positive", "complaint": "negative", "sarcasm": "very negative"}
# each text's dominant concept, and the model's prediction: the table rule is right on 14 of the 20 texts
TOPS = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]
PREDICTIONS = [0, 1, 2, 2, 0, 1, 2, 0, 1, 2, 0, 0, 2, 2, 1, 2, 1, 1, 2, 0]
TEXTS = [f"tweet number {i}" for i in range(20)]


def activations_of(tops: list[int]) -> torch.Tensor:
    """One dominant concept per text, plus a faint second one (share below 5%: never shown)."""
    rows = torch.zeros(len(tops), 3)
    for i, top in enumerate(tops):
        rows[i, top] = 1.0
        rows[i, (top + 1) % 3] = 0.02
    return rows


def field(message: str, name: str) -> str | None:
    for line in message.splitlines():
        if line.startswith(f"{name}: "):
            return line[len(name) + 2 :]
    return None


def earlier(conversation: list[dict]) -> str:
    """Every message but the last (the one asking the evaluation sample)."""
    return "\n".join(message["content"] for message in conversation[:-1])


def table_or_majority(conversation: list[dict]) -> str:
    """The stand-in simulator: the table class of the first concept listed for the text asked; without concepts
    (the baseline), the most frequent prediction of the learning phase (ties: the first seen)."""
    concepts = field(conversation[-1]["content"], "Concepts")
    if concepts is not None:
        return TABLE[concepts.split("; ")[0].rsplit(" (", 1)[0]]
    shown = [message["content"] for message in conversation if message["role"] == "assistant"]
    return Counter(shown).most_common(1)[0][0]


def hand_accuracies(learning: list[int], evaluation: list[int]) -> tuple[float, float]:
    """(table rule accuracy, majority rule accuracy) on the evaluation samples, against the model's predictions."""
    names = [CLASSES[p] for p in PREDICTIONS]
    table = sum(TABLE[LABELS[TOPS[i]]] == names[i] for i in evaluation) / len(evaluation)
    majority = Counter(names[i] for i in learning).most_common(1)[0][0]
    return table, sum(names[i] == majority for i in evaluation) / len(evaluation)


class FixedSplit(ConSim):
    """ConSim with a given split for every seed (for a case known exactly)."""

    split = (list(range(10)), list(range(10, 20)))

    def draw(self, texts, seed, labels=None, predictions=None):
        return list(self.split[0]), list(self.split[1])


def test_fixed_split_scores_are_the_hand_computed_7_of_10_and_4_of_10():
    # evaluation = texts 10..19: the table is wrong on texts 11, 13 and 16 -> 7/10; learning = texts 0..9, whose
    # predictions are 2 x4, 0 x3, 1 x3 -> majority "positive", and 4 of the evaluation predictions are 2 -> 4/10
    consim = FixedSplit(llm=table_or_majority, n_learning=10, n_eval=10, seeds=(0, 1), concept_labels=LABELS)
    result = consim.compute(TEXTS, CLASSES, PREDICTIONS, activations_of(TOPS))
    assert result.details["accuracy"] == {"baseline": 0.4, "concepts": 0.7}
    assert_close_to_scale(result.value, 0.3)
    assert result.details["ci95"] == [result.value, result.value]  # the same split twice: no spread
    assert result.details["n_unparsed"] == 0 and result.higher_is_better
    saved = json.loads(json.dumps(result.to_dict()))
    assert saved["details"]["per_seed"][0]["evaluation"] == list(range(10, 20))


def test_seeded_scores_equal_the_hand_computed_rule_accuracies_on_each_split():
    consim = ConSim(llm=table_or_majority, n_learning=8, n_eval=10, seeds=range(6), concept_labels=LABELS)
    result = consim.compute(TEXTS, CLASSES, PREDICTIONS, activations_of(TOPS))
    expected = [hand_accuracies(*consim.draw(TEXTS, seed)) for seed in range(6)]
    for row, (table, majority) in zip(result.details["per_seed"], expected, strict=True):
        assert (row["accuracy"]["concepts"], row["accuracy"]["baseline"]) == (table, majority)
        assert [row["learning"], row["evaluation"]] == list(consim.draw(TEXTS, row["seed"]))
    gains = [table - majority for table, majority in expected]
    mean, low, high = t_interval(gains)
    assert_close_to_scale(result.value, sum(gains) / 6)
    assert_close_to_scale(result.details["ci95"], [low, high], scale=1.0)
    assert len(set(gains)) > 1  # the splits differ, so does the score


def test_t_interval_matches_the_closed_form():
    # n = 5, mean 0.2, std 0.1 (n - 1): half width = t(0.975, 4) * 0.1 / sqrt(5) = 2.776445 * 0.0447214
    mean, low, high = t_interval([0.1, 0.2, 0.3, 0.2, 0.2])
    values = torch.tensor([0.1, 0.2, 0.3, 0.2, 0.2], dtype=torch.float64)
    half = 2.7764451051977987 * float(values.std()) / 5**0.5
    assert_close_to_scale([mean, low, high], [0.2, 0.2 - half, 0.2 + half], scale=1.0, fraction=1e-12)


def test_learning_and_evaluation_never_overlap_in_indices_nor_texts_over_many_seeds():
    texts = [f"text {i % 20}" for i in range(30)]  # 20 distinct texts, 10 of them twice
    consim = ConSim(n_learning=8, n_eval=12, seeds=(0, 1))
    splits = set()
    for seed in range(300):
        learning, evaluation = consim.draw(texts, seed)
        assert len(learning) == 8 and len(evaluation) == 12
        assert not set(learning) & set(evaluation)
        shown = [texts[i] for i in learning + evaluation]
        assert len(set(shown)) == 20  # every distinct text at most once, on one side only
        splits.add((tuple(learning), tuple(evaluation)))
    assert len(splits) == 300
    for prompt in consim.prompts(texts, CLASSES, [0] * 30, torch.rand(30, 3)):
        for i, conversation in zip(prompt.evaluation, prompt.conversations, strict=True):
            learned = [field(m["content"], "Text") for m in conversation[1:-1] if m["role"] == "user"]
            assert texts[i] not in learned and field(conversation[-1]["content"], "Text") == texts[i]
            assert sorted(learned) == sorted(texts[j] for j in prompt.learning)


def test_labels_balance_the_draw_between_right_and_wrong_predictions():
    labels = [p if i < 12 else (p + 1) % 3 for i, p in enumerate(PREDICTIONS)]  # the model is wrong on 8
    consim = ConSim(n_learning=6, n_eval=6, seeds=(0, 1))
    for seed in range(50):
        learning, evaluation = consim.draw(TEXTS, seed, labels, PREDICTIONS)
        assert sum(PREDICTIONS[i] == labels[i] for i in learning + evaluation) == 6


def oracle(conversation: list[dict]) -> str:
    """Knows the model: answers the model's prediction on the text asked."""
    text = field(conversation[-1]["content"], "Text")
    return CLASSES[PREDICTIONS[TEXTS.index(text)]]


def test_expected_answers_are_the_models_predictions_on_the_evaluation_samples_not_the_labels():
    labels = [(p + 1) % 3 if i % 2 else p for i, p in enumerate(PREDICTIONS)]  # differ on half the texts
    consim = ConSim(llm=oracle, n_learning=10, n_eval=10, seeds=(0, 1, 2), concept_labels=LABELS)
    result = consim.compute(TEXTS, CLASSES, PREDICTIONS, activations_of(TOPS), labels=labels)
    assert result.details["accuracy"] == {"baseline": 1.0, "concepts": 1.0} and result.value == 0.0
    for prompt in consim.prompts(TEXTS, CLASSES, PREDICTIONS, activations_of(TOPS), labels=labels):
        assert prompt.expected == [CLASSES[PREDICTIONS[i]] for i in prompt.evaluation]
        assert prompt.expected != [CLASSES[PREDICTIONS[i]] for i in prompt.learning]  # not the other split's

    def gold(conversation):  # answers the gold label: right only where the model is
        return CLASSES[labels[TEXTS.index(field(conversation[-1]["content"], "Text"))]]

    scored = ConSim(llm=gold, n_learning=10, n_eval=10, seeds=(0, 1, 2), concept_labels=LABELS)
    result = scored.compute(TEXTS, CLASSES, PREDICTIONS, activations_of(TOPS), labels=labels)
    for row in result.details["per_seed"]:
        agree = sum(labels[i] == PREDICTIONS[i] for i in row["evaluation"]) / 10
        assert row["accuracy"] == {"baseline": agree, "concepts": agree}


def test_multi_word_class_names_match_the_longest_first_case_and_punctuation_aside():
    names = ["negative", "very negative", "positive"]
    assert parse_answer("very negative", names) == 1
    assert parse_answer("  **Very-Negative!**", names) == 1
    assert parse_answer("Prediction: negative.", names) == 0
    assert parse_answer("negative, not very negative", names) == 0  # the first match in the line
    assert parse_answer("The classifier says VERY NEGATIVE", names) == 1
    assert parse_answer("\n\nPositive\nvery negative", names) == 2  # the first non-empty line only
    assert parse_answer("nonnegative", names) is None  # whole words
    assert parse_answer("I cannot tell.\npositive", names) is None
    assert parse_answer("", names) is None


def test_unparsed_answers_count_as_wrong_and_are_reported():
    def vague(conversation):  # the table rule on odd texts, no class otherwise
        text = field(conversation[-1]["content"], "Text")
        return table_or_majority(conversation) if int(text.split()[-1]) % 2 else "I do not know."

    consim = FixedSplit(llm=vague, n_learning=10, n_eval=10, seeds=(0, 1), concept_labels=LABELS)
    result = consim.compute(TEXTS, CLASSES, PREDICTIONS, activations_of(TOPS))
    # odd evaluation texts 11..19: the table is right on 15, 17, 19 (wrong on 11 and 13) -> 3/10
    assert result.details["accuracy"]["concepts"] == 0.3
    assert result.details["n_unparsed_by_setting"] == {"baseline": 10, "concepts": 10}
    assert result.details["n_unparsed"] == 20


def test_prompt_only_mode_returns_the_conversations_and_calls_no_llm():
    def refuse(conversation):
        raise AssertionError("the LLM was called")

    consim = ConSim(llm=CallableLLM(refuse), n_learning=5, n_eval=4, seeds=(3, 4), concept_labels=LABELS)
    prompts = consim.prompts(TEXTS, CLASSES, PREDICTIONS, activations_of(TOPS))
    assert [(p.seed, p.setting) for p in prompts] == [
        (3, "baseline"),
        (3, "concepts"),
        (4, "baseline"),
        (4, "concepts"),
    ]
    for prompt in prompts:
        assert len(prompt.conversations) == 4 == len(prompt.expected) and len(prompt.learning) == 5
        conversation = prompt.conversations[0]
        assert [m["role"] for m in conversation] == ["system"] + ["user", "assistant"] * 5 + ["user"]
        answers = [m["content"] for m in conversation if m["role"] == "assistant"]
        assert answers == [CLASSES[PREDICTIONS[i]] for i in prompt.learning]  # the model's predictions
        shown = [field(m["content"], "Text") for m in conversation if m["role"] == "user"]
        assert shown[:-1] == [TEXTS[i] for i in prompt.learning]
        user, before = conversation[-1]["content"], earlier(conversation)
        assert ("Concepts: " in user) == ("Concepts: " in before) == (prompt.setting == "concepts")
        for i, conversation in zip(prompt.evaluation, prompt.conversations, strict=True):
            assert field(conversation[-1]["content"], "Text") == TEXTS[i]
            if prompt.setting == "concepts":
                assert field(conversation[-1]["content"], "Concepts") == f"{LABELS[TOPS[i]]} (++)"
    assert prompts[0].to_dict()["expected"] == prompts[0].expected
    no_concepts = ConSim(n_learning=5, n_eval=4, seeds=(3, 4), eval_concepts=False, concept_labels=LABELS)
    for prompt in no_concepts.prompts(TEXTS, CLASSES, PREDICTIONS, activations_of(TOPS)):  # the paper's E3
        assert "Concepts: " not in prompt.conversations[0][-1]["content"]


IMPORTANCES = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.5, -1.0], [-0.5, 1.0, -0.5]])  # (concepts, classes)


def test_contributions_are_activation_times_importance_for_the_predicted_class():
    # activations (2, 1, 0), class 0 column (0, 1, -0.5): contributions (0, 1, 0) -> "complaint (++)"
    # class 2 column (1, -1, -0.5): (2, -1, 0), shares (2/3, -1/3) -> "praise (++); complaint (--)"
    assert render(concept_levels(torch.tensor([2.0, -1.0, 0.0]), 5, signed=True), LABELS) == (
        "praise (++); complaint (--)"
    )
    assert concept_levels(torch.tensor([0.9, 0.06, 0.04]), 5, signed=False) == [(0, "++"), (1, "+")]
    texts, predictions = ["first text", "second text", "third text"], [0, 2, 1]
    activations = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    consim = FixedSplit(n_learning=1, n_eval=2, seeds=(0, 1), concept_labels=LABELS, importances=IMPORTANCES)
    consim.split = ([0], [1, 2])
    prompts = consim.prompts(texts, CLASSES, predictions, activations)
    assert [p.setting for p in prompts[:3]] == ["baseline", "concepts", "upper_bound"]
    system, shown, answer = (m["content"] for m in prompts[1].conversations[0][:3])
    assert shown == (
        "Text: first text\nConcepts: praise (++); complaint (++)\n"  # shares 2/3 and 1/3
        "Contributions to the prediction: complaint (++)"
    )
    assert answer == "negative"
    assert "- positive: praise (++); complaint (--); sarcasm (-)" in system  # shares 0.4, -0.4, -0.2
    upper = [conversation[-1]["content"] for conversation in prompts[2].conversations]
    assert field(upper[0], "Contributions to the prediction") == "praise (++); complaint (--)"
    assert field(upper[1], "Contributions to the prediction") == "sarcasm (++)"  # 3 * 1.0 for class 1
    assert all("Contributions" not in c[-1]["content"] for c in prompts[1].conversations)
    assert "How the concepts push" not in prompts[0].conversations[0][0]["content"]


BINARY = ["negative", "positive"]
BINARY_IMPORTANCES = torch.tensor([[-1.0, 1.0], [1.0, -1.0]])  # praise pushes positive, complaint negative
BINARY_TOPS = [0, 1] * 10
# learning 0..9: 6 positive -> majority positive; evaluation 10..19: the rule (praise -> positive) is right on
# the first 7, and 6 of them are positive
BINARY_PREDICTIONS = [1, 0, 1, 0, 1, 0, 1, 1, 1, 0] + [1, 0, 1, 0, 1, 0, 1, 1, 0, 1]


def reads_contributions(conversation: list[dict]) -> str:
    """The upper-bound reader: the sign of the first concept's contribution to the prediction says whether the
    prediction is the class that concept pushes toward; without contributions, the table rule (concepts) or the
    learning-phase majority (baseline)."""
    user = conversation[-1]["content"]
    contributions, concepts = field(user, "Contributions to the prediction"), field(user, "Concepts")
    if contributions is not None:
        name, symbol = contributions.split("; ")[0][:-1].rsplit(" (", 1)
        supported = "positive" if name == "praise" else "negative"
        return supported if symbol.startswith("+") else BINARY[1 - BINARY.index(supported)]
    if concepts is not None:
        return "positive" if concepts.startswith("praise") else "negative"
    return table_or_majority(conversation)


def test_upper_bound_with_contributions_known_at_evaluation_reaches_the_model_exactly():
    consim = FixedSplit(
        llm=reads_contributions,
        n_learning=10,
        n_eval=10,
        seeds=(0, 1),
        concept_labels=LABELS,
        importances=BINARY_IMPORTANCES,
    )
    activations = activations_of(BINARY_TOPS)[:, :2]
    result = consim.compute(TEXTS, BINARY, BINARY_PREDICTIONS, activations)
    assert result.details["accuracy"] == {"baseline": 0.6, "concepts": 0.7, "upper_bound": 1.0}
    assert_close_to_scale(result.details["upper_bound_gain"], 0.4)
    assert_close_to_scale(result.value, 0.1)


def test_the_loopback_endpoint_gives_the_same_score_as_the_callable():
    consim = ConSim(llm=table_or_majority, n_learning=6, n_eval=5, seeds=(0, 1, 2), concept_labels=LABELS)
    direct = consim.compute(TEXTS, CLASSES, PREDICTIONS, activations_of(TOPS))
    with serve_chat(table_or_majority) as served:
        consim.llm = OpenAIChatLLM(served.url, "served", max_concurrency=2)
        remote = consim.compute(TEXTS, CLASSES, PREDICTIONS, activations_of(TOPS))
    assert len(served.requests) == 3 * 2 * 5
    assert remote.value == direct.value and remote.details == direct.details


def test_predictions_and_activations_from_a_split_classifier_and_its_explainer():
    model, tokenizer = tiny_bert_classifier(num_labels=3, seed=1)
    model.train()  # the user's mode must come back
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False, batch_size=3)
    texts = [
        "a good movie",
        "a bad film",
        "the plot is long",
        "great acting",
        "i fell asleep",
        "what a day",
        "not my taste",
    ]
    neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(texts))
    consim = ConSim(splitter, neurons, n_learning=3, n_eval=3, seeds=(0, 1), batch_size=2)
    prompts = consim.prompts(texts, ["a", "b", "c"])
    assert model.training
    model.eval()
    with torch.no_grad():
        encoded = tokenizer(texts, padding=True, return_tensors="pt")
        output = model(**encoded, output_hidden_states=True)
    predictions = output.logits.argmax(-1).tolist()
    for prompt in prompts:
        assert prompt.expected == [["a", "b", "c"][predictions[i]] for i in prompt.evaluation]
    hidden = output.hidden_states[2]  # the output of encoder layer 1
    text_tokens = encoded["attention_mask"].bool() & (encoded["input_ids"] != tokenizer.cls_token_id)
    text_tokens &= encoded["input_ids"] != tokenizer.sep_token_id
    expected_max = torch.stack([hidden[k][text_tokens[k]].max(0).values for k in range(len(texts))])
    expected_mean = torch.stack([hidden[k][text_tokens[k]].mean(0) for k in range(len(texts))])
    assert_close_to_scale(sample_concept_activations(neurons, texts, "max", batch_size=2), expected_max)
    assert_close_to_scale(sample_concept_activations(neurons, texts, "mean", batch_size=4), expected_mean)


@pytest.mark.parametrize(
    ("kwargs", "compute", "match"),
    [
        ({"n_learning": 15, "n_eval": 6}, {}, "n_learning"),
        ({}, {"predictions": [0] * 19 + [3]}, "predictions"),
        ({}, {"predictions": [0] * 19 + ["neutral"]}, "predictions"),
        ({}, {"class_names": ["negative", "Negative!", "positive"]}, "class_names"),
        ({"seeds": (0,)}, {}, "seeds"),
        ({"seeds": (0, 0)}, {}, "seeds"),
        ({"upper_bound": True}, {}, "importances"),
        ({"importances": torch.zeros(2, 3)}, {}, "importances"),
        ({"llm": None}, {}, "llm"),
        ({}, {"concept_activations": None}, "explainer"),
        ({}, {"predictions": None}, "model"),
        ({}, {"concept_activations": torch.zeros(19, 3)}, "concept_activations"),
        ({"n_eval": 0}, {}, "n_eval"),
        ({"pooling": "sum"}, {}, "pooling"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs, compute, match):
    arguments = {
        "texts": TEXTS,
        "class_names": CLASSES,
        "predictions": PREDICTIONS,
        "concept_activations": activations_of(TOPS),
        **compute,
    }
    with pytest.raises(ValueError, match=match):
        settings = {"llm": table_or_majority, "n_learning": 5, "n_eval": 5, **kwargs}
        ConSim(**settings).compute(**arguments)


@pytest.mark.slow
def test_smollm2_smoke_answers_are_parsed_and_scores_bounded():
    from interpreto.zoo import smollm2

    try:
        chat = smollm2()
    except ImportError as error:
        pytest.skip(f"SmolLM2 is not available: {error}")
    texts = [
        "I love this movie",
        "I hate this movie",
        "what a great day",
        "this is awful",
        "so happy now",
        "terrible service",
    ]
    predictions = [1, 0, 1, 0, 1, 0]
    activations = torch.tensor([[1.0, 0.0] if p else [0.0, 1.0] for p in predictions])
    consim = ConSim(
        llm=chat,
        n_learning=3,
        n_eval=2,
        seeds=(0, 1),
        concept_labels={0: "joy", 1: "anger"},
        max_new_tokens=4,
    )
    result = consim.compute(texts, ["negative", "positive"], predictions, activations)
    answers = [a for row in result.details["per_seed"] for s in row["answers"].values() for a in s]
    assert len(answers) == 8
    assert result.details["n_unparsed"] <= 1, answers  # measured: 0 of 8 unparsed
    assert all(0.0 <= a <= 1.0 for a in result.details["accuracy"].values())
    assert -1.0 <= result.value <= 1.0
