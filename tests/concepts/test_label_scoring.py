"""Label scorers: the metrics equal scikit-learn / numpy on the same vectors (answers under our control), the
planted colour concept scores its true label well above a wrong one, the loopback endpoint gives identical
scores, parsing, errors, and a SmolLM2 smoke run.
"""

from __future__ import annotations

import math
import re
import time
import zlib

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from interpreto.concepts.interpret.label_scoring import (
    DetectionScorer,
    FuzzingScorer,
    LabelScore,
    SimulationScorer,
    yes_probability,
)
from interpreto.concepts.interpret.labels import LLMLabels, sample_examples
from interpreto.concepts.interpret.prompts import parse_simulation, parse_yes_no
from interpreto.model.llm import CallableLLM, LocalChatLLM, OpenAIChatLLM
from tests.concepts.test_labels import CATEGORIES, CountingLLM, category_judge, colour_codes
from tests.model.fake_chat import serve_chat
from tests.tolerance import assert_close_to_scale

SCORERS = (DetectionScorer, FuzzingScorer, SimulationScorer)


@pytest.fixture(scope="module")
def codes():
    return colour_codes()


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def _p_yes(conversation) -> float:
    """A controlled probability of yes for a question, in (0, 1)."""
    return (_crc(conversation[-1]["content"]) % 97 + 1) / 99


def _lp(conversation) -> dict[str, float]:
    """Log-probabilities of the category judge's answer: P(yes) high when it says yes."""
    p = 0.8 if category_judge(conversation) == "yes" else 0.3
    p = min(0.99, max(0.01, p + (_crc(conversation[-1]["content"]) % 11 - 5) / 100))
    return {"yes": math.log(p), "no": math.log(1 - p)}


class JudgeLLM(CallableLLM):
    """A CallableLLM with log-probabilities from `lp(conversation) -> {"yes": lp, "no": lp}` (matched case-blind,
    as OpenAIChatLLM reads top_logprobs)."""

    supports_logprobs = True

    def __init__(self, fn, lp):
        super().__init__(fn)
        self.lp = lp

    def option_logprobs(self, conversations, options):
        rows = [[self.lp(c).get(o.lower(), -math.inf) for o in options] for c in conversations]
        return torch.tensor(rows, dtype=torch.float32)


def _text(conversation) -> str:
    return re.search(r"^Text: (.*)$", conversation[-1]["content"], re.MULTILINE).group(1)


def test_yes_no_metrics_equal_sklearn(codes):
    """Answers under our control (a hash of the question): the scores are sklearn's on the same vectors."""
    seen = []

    def answer(conversation):
        said = "Yes." if _crc(conversation[-1]["content"]) % 3 else "no"
        seen.append((conversation, said))
        return said

    for scorer_class in (DetectionScorer, FuzzingScorer):
        seen.clear()
        llm = JudgeLLM(answer, lambda c: {"yes": math.log(_p_yes(c)), "no": math.log(1 - _p_yes(c))})
        scorer = scorer_class(None, llm, n_inactive=6, progress=False)
        score = scorer.score(codes, {0: "colours"})[0]
        # truth: a detection text is activating iff it holds a colour word; a fuzzing question is a correct
        # highlight iff its highlighted words are colours (wrong highlights never fall on a firing token)
        if scorer_class is DetectionScorer:
            truth = [bool(set(_text(c).split()) & CATEGORIES["colours"]) for c, _ in seen]
        else:
            marked = [" ".join(re.findall(r"<<(.*?)>>", _text(c))).split() for c, _ in seen]
            truth = [all(w in CATEGORIES["colours"] for w in m) for m in marked]
        predicted = [said.lower().startswith("yes") for _, said in seen]
        p_yes = [_p_yes(c) for c, _ in seen]
        assert 0 < sum(truth) < len(truth) and 0 < sum(predicted) < len(predicted)
        assert score.value == pytest.approx(balanced_accuracy_score(truth, predicted), abs=1e-12)
        assert score.detail["f1"] == pytest.approx(f1_score(truth, predicted), abs=1e-12)
        assert score.detail["precision"] == pytest.approx(precision_score(truth, predicted), abs=1e-12)
        assert score.detail["recall"] == pytest.approx(recall_score(truth, predicted), abs=1e-12)
        assert score.detail["auc"] == pytest.approx(roc_auc_score(truth, p_yes), abs=1e-6)
        assert score.detail["n_positive"] == sum(truth) and score.detail["unparsed"] == 0
        assert score.method == scorer.method and score.label == "colours"
    # without log-probabilities there is no AUC
    plain = DetectionScorer(None, CallableLLM(answer), progress=False).score(codes, {0: "colours"})[0]
    assert "auc" not in plain.detail and not math.isnan(plain.value)


def test_detection_counts(codes):
    """k top + n_quantiles * n_random activating questions and n_inactive non-activating ones, in one call."""
    llm = CountingLLM(category_judge)
    scorer = DetectionScorer(None, llm, k_examples=4, n_quantiles=3, n_random=2, n_inactive=7, progress=False)
    scores = scorer.score(codes, {0: "colours", 1: "animals"})
    assert llm.calls == 1 and llm.conversations == 2 * (4 + 3 * 2 + 7)
    assert [(s.detail["n_positive"], s.detail["n_negative"]) for s in scores.values()] == [(10, 7), (10, 7)]


def test_simulation_equals_numpy(codes):
    """Predictions under our control: the value is the Pearson r (np.corrcoef) of the hand-built vectors."""

    def predict(conversation):
        shown = conversation[-1]["content"].split("Tokens:\n")[1].split("\n\n")[0].splitlines()
        return "Activations:\n" + "\n".join(
            f"{t}\t{_crc(t) % 11}" for t in shown[:-1]
        )  # the last one missing

    scorer = SimulationScorer(
        None, CallableLLM(predict), k_examples=2, n_quantiles=2, n_random=1, n_inactive=2
    )
    score = scorer.score(codes, {0: "colours"})[0]
    examples = sample_examples(codes, 0, 2, 2, 1, 2, 8, 0.1, 0, salt=1)
    true, predicted, n_shown = [], [], 0
    for example in examples.activating + examples.inactive:
        shown = [t for t in example.context if t.text.strip()]
        n_shown += len(shown)
        for k, token in enumerate(shown):
            if token.scored:
                true.append(min(10.0, max(0.0, 10 * token.activation / examples.peak)))
                predicted.append(0.0 if k == len(shown) - 1 else float(_crc(token.text.strip()) % 11))
    assert score.value == pytest.approx(float(np.corrcoef(true, predicted)[0, 1]), abs=1e-12)
    assert score.detail["n_tokens"] == len(true) and score.detail["n_contexts"] == 6
    assert score.detail["parsed_fraction"] == pytest.approx((n_shown - 6) / n_shown)
    assert score.detail["constant"] == 0.0


def test_simulation_constant_is_zero(codes):
    flat = SimulationScorer(None, CallableLLM(lambda c: "nothing here"), progress=False)
    score = flat.score(codes, {0: "colours"})[0]
    assert (score.value, score.detail["constant"], score.detail["parsed_fraction"]) == (0.0, 1.0, 0.0)


def test_planted_true_label_beats_wrong(codes):
    """The category judge: 'colours' scores far above 'animals' for the colour concept (and vice versa)."""
    llm = JudgeLLM(category_judge, _lp)
    found = {}
    for scorer_class in SCORERS:
        scorer = scorer_class(None, llm, progress=False)
        right = scorer.score(codes, {0: "colours", 1: "animals"})
        wrong = scorer.score(codes, {0: "animals", 1: "colours"})
        found[scorer.method] = (right[0].value, wrong[0].value, right[1].value, wrong[1].value)
        print(scorer.method, {k: round(v, 3) for k, v in right[0].detail.items()}, round(wrong[0].value, 3))
    print(
        "(true, wrong) for concept 0, then concept 1:",
        {k: tuple(round(v, 3) for v in s) for k, s in found.items()},
    )
    for method, (right0, wrong0, right1, wrong1) in found.items():
        assert right0 >= 0.9 and right1 >= 0.9, method
        assert right0 - wrong0 >= 0.3 and right1 - wrong1 >= 0.3, method
    # the judge is exact on detection and fuzzing: every question right
    assert found["detection"][0] == found["fuzzing"][0] == 1.0


def test_labels_then_scores(codes):
    """The whole loop with the stand-in: labels from LLMLabels, then scored."""
    llm = JudgeLLM(category_judge, _lp)
    labels = LLMLabels(None, llm, progress=False).label(codes, [0, 1])
    scores = DetectionScorer(None, llm, progress=False).score(codes, labels)
    assert labels == {0: "colours", 1: "animals"}
    assert all(s.value == 1.0 and s.detail["auc"] == 1.0 for s in scores.values())
    assert LabelScore(**scores[0].to_dict()) == scores[0]


def test_loopback_endpoint_gives_identical_scores(codes):
    local = JudgeLLM(category_judge, _lp)
    with serve_chat(category_judge, option_logprobs=_lp) as served:
        remote = OpenAIChatLLM(served.url, "served")
        for scorer_class in SCORERS:
            kwargs = {"progress": False, "seed": 3}
            here = scorer_class(None, local, **kwargs).score(codes, {0: "colours", 1: "animals"})
            there = scorer_class(None, remote, **kwargs).score(codes, {0: "colours", 1: "animals"})
            assert here == there, scorer_class.__name__
    assert any(body.get("logprobs") for body in served.requests)


def test_seeded(codes):
    def hashed(conversation):
        return "yes" if _crc(conversation[-1]["content"]) % 2 else "no"

    make = lambda seed: DetectionScorer(None, CallableLLM(hashed), seed=seed, progress=False)  # noqa: E731
    labels = {0: "colours"}
    assert make(0).score(codes, labels) == make(0).score(codes, labels)
    assert make(0).score(codes, labels)[0].detail != make(1).score(codes, labels)[0].detail


@pytest.mark.parametrize(
    ("answer", "values", "read"),
    [
        ("red\t9\ncar\t0", [9.0, 0.0, 0.0], 2),
        ("Here you go:\nred\t12\ncar\t-3\nsky\t4.5", [10.0, 0.0, 4.5], 3),
        ('[["red", 7], ["car", 1], ["sky", 0]]', [7.0, 1.0, 0.0], 3),
        ('[{"token": "red", "activation": 8}]', [8.0, 0.0, 0.0], 1),
        ("no idea", [0.0, 0.0, 0.0], 0),
        ("10 red\nred 2", [2.0, 0.0, 0.0], 1),  # a line without a tab must end with its number
    ],
)
def test_parse_simulation(answer, values, read):
    assert parse_simulation(answer, 3) == (values, read)


def test_parse_yes_no_and_p_yes():
    assert [parse_yes_no(a) for a in ["YES", " no.", "**Yes**", "I think so", ""]] == [
        True,
        False,
        True,
        None,
        None,
    ]
    logprobs = torch.log(torch.tensor([[0.3, 0.1, 0.2, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    assert_close_to_scale(yes_probability(logprobs), [0.4 / 0.6, 0.5])


def test_no_firing_concept_is_nan(codes):
    for scorer_class in SCORERS:
        with pytest.warns(UserWarning, match=r"concepts \[2\]"):
            score = scorer_class(None, CallableLLM(category_judge), progress=False).score(
                codes, {2: "nothing"}
            )
        assert math.isnan(score[2].value)


def test_errors(codes):
    scorer = DetectionScorer(None, CallableLLM(category_judge), progress=False)
    with pytest.raises(ValueError, match="labels"):
        scorer.score(codes, {5: "colours"})
    with pytest.raises(ValueError, match=r"labels\[0\]"):
        scorer.score(codes, {0: "  "})
    with pytest.raises(ValueError, match="labels"):
        scorer.score(codes, {})
    with pytest.raises(ValueError, match="labels"):
        scorer.score(codes, ["colours"])
    with pytest.raises(ValueError, match="inputs"):
        scorer.score(["The red car."], {0: "colours"})
    with pytest.raises(ValueError, match="n_inactive"):
        DetectionScorer(None, CallableLLM(category_judge), n_inactive=-1)
    with pytest.raises(ValueError, match="batch_size"):
        SimulationScorer(None, CallableLLM(category_judge), batch_size=0)


def test_smollm2_scores():
    from interpreto.zoo import smollm2

    model, tokenizer = smollm2()
    llm = LocalChatLLM(model, tokenizer)
    codes, labels = colour_codes(12), {0: "colours"}
    start = time.perf_counter()
    small = {
        "k_examples": 2,
        "n_quantiles": 0,
        "n_random": 0,
        "n_inactive": 2,
        "context": 3,
        "progress": False,
    }
    detection = DetectionScorer(None, llm, **small).score(codes, labels)[0]
    fuzzing = FuzzingScorer(None, llm, **{**small, "n_inactive": 0, "k_examples": 1}).score(codes, labels)[0]
    simulation = SimulationScorer(None, llm, **{**small, "n_inactive": 0, "k_examples": 1}, max_new_tokens=24)
    simulated = simulation.score(codes, labels)[0]
    elapsed = time.perf_counter() - start
    print(f"SmolLM2: detection {detection}, fuzzing {fuzzing}, simulation {simulated} ({elapsed:.1f} s)")
    for score, n in ((detection, 2), (fuzzing, 1)):
        assert 0.0 <= score.value <= 1.0 and 0.0 <= score.detail["auc"] <= 1.0
        assert score.detail["n_positive"] == n and score.detail["n_negative"] == n
    assert -1.0 <= simulated.value <= 1.0 and 0.0 <= simulated.detail["parsed_fraction"] <= 1.0
