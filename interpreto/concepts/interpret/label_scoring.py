"""How well a concept's label predicts where the concept fires, judged by an LLM (EleutherAI's delphi).

Each scorer draws the concept's examples as `LLMLabels` does (`interpreto.concepts.interpret.labels`: top and
quantile examples of its firing tokens, and contexts in which it does not fire; the random draws differ from
the labeller's for the same seed, the top examples are the same), asks the LLM one question per example, in one
batch over all concepts, and compares the answers with the truth:

- `DetectionScorer`: "does this text contain <label>?" for activating and non-activating contexts. Value:
  balanced accuracy; also F1, precision, recall and, when the LLM gives log-probabilities, the ROC AUC of
  P(yes) (normalised over yes and no).
- `FuzzingScorer`: activating contexts with their firing tokens highlighted, against the same contexts with as
  many tokens highlighted at random among those that do not fire: "do the highlighted tokens match <label>?".
  Same metrics.
- `SimulationScorer`: the LLM predicts an activation from 0 to 10 for each token of a few contexts from the
  label; value: the Pearson correlation, over all their scored tokens, between the predictions and the true
  activations scaled to 0-10 by the concept's largest activation (negative ones read as 0). When either side is
  constant the correlation is undefined: the value is then 0 with `detail["constant"] = 1`.

A concept without activating examples (or, for the yes/no scorers, without both kinds of questions) gets a NaN
value, with a warning.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from tqdm.auto import tqdm

from interpreto.concepts.interpret import prompts
from interpreto.concepts.interpret.codes import ConceptCodes
from interpreto.concepts.interpret.labels import (
    ConceptExamples,
    ask,
    check_common,
    check_counts,
    check_labels,
    resolve_codes,
    sample_examples,
)
from interpreto.model.llm import ChatLLM, Conversation, as_chat_llm


@dataclass
class LabelScore:
    """The score of one concept's label.

    Attributes:
        concept: the concept index.
        label: the label scored.
        method: `"detection"`, `"fuzzing"` or `"simulation"`.
        value: the main score (balanced accuracy, or Pearson r for simulation); NaN when it cannot be computed.
        detail: the other numbers (metrics, counts, flags).
    """

    concept: int
    label: str
    method: str
    value: float
    detail: dict[str, float]

    def to_dict(self) -> dict:
        """A JSON-ready dictionary."""
        return asdict(self)


@dataclass
class _Question:
    conversation: Conversation
    truth: Any  # bool for yes/no questions, the true 0-10 activations (None: not scored) for simulation


class _LabelScorer:
    method = ""
    desc = ""

    def __init__(
        self,
        explainer: Any,
        llm: Any,
        k_examples: int,
        n_quantiles: int,
        n_random: int,
        n_inactive: int,
        context: int,
        threshold: float,
        max_new_tokens: int,
        seed: int,
        batch_size: int | None,
        progress: bool,
    ):
        check_counts(
            k_examples=k_examples,
            n_quantiles=n_quantiles,
            n_random=n_random,
            n_inactive=n_inactive,
            context=context,
        )
        check_common(threshold, max_new_tokens, batch_size)
        self.explainer = explainer
        self.llm: ChatLLM = as_chat_llm(llm)
        self.k_examples, self.n_quantiles, self.n_random = k_examples, n_quantiles, n_random
        self.n_inactive, self.context, self.threshold = n_inactive, context, threshold
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.batch_size, self.progress = batch_size, progress

    def score(self, inputs: list[str] | ConceptCodes, labels: dict[int, str]) -> dict[int, LabelScore]:
        """The score of each label.

        Args:
            inputs: texts (encoded with `ConceptCodes.compute(explainer, texts)`) or `ConceptCodes`.
            labels: `{concept: label}`, e.g. from `LLMLabels(...).label(...)`.

        Returns:
            `{concept: LabelScore}`, in the order of `labels`.

        Raises:
            ValueError: naming `labels` for a key that is not a concept of the codes or an empty label, or
                `inputs` when they are missing or do not match the explainer.
        """
        codes = resolve_codes(self.explainer, inputs, self.progress)
        labels = check_labels(labels, codes.nb_concepts)
        questions: dict[int, list[_Question]] = {}
        found: dict[int, ConceptExamples] = {}
        for concept, label in labels.items():
            found[concept] = sample_examples(
                codes, concept, self.k_examples, self.n_quantiles, self.n_random, self.n_inactive, self.context,
                self.threshold, self.seed, salt=1,
            )  # fmt: skip
            rng = np.random.default_rng([self.seed, concept, 2])
            questions[concept] = (
                self._questions(label, found[concept], rng) if found[concept].activating else []
            )
        flat = [question for group in questions.values() for question in group]
        conversations = [question.conversation for question in flat]
        answers = ask(self.llm, conversations, self.max_new_tokens, self.batch_size, self.progress, self.desc)
        extra = self._extra(conversations)
        results, start = {}, 0
        for concept, group in questions.items():
            end = start + len(group)
            part = None if extra is None else extra[start:end]
            results[concept] = self._result(concept, labels[concept], group, answers[start:end], part)
            start = end
        undefined = [c for c, result in results.items() if math.isnan(result.value)]
        if undefined:
            warnings.warn(
                f"{self.method}: concepts {undefined} have too few examples of one kind on these inputs: NaN.",
                stacklevel=2,
            )
        return results

    def _questions(self, label: str, examples: ConceptExamples, rng: np.random.Generator) -> list[_Question]:
        raise NotImplementedError

    def _extra(self, conversations: list[Conversation]) -> list[float] | None:
        return None

    def _result(
        self,
        concept: int,
        label: str,
        questions: list[_Question],
        answers: list[str],
        extra: list[float] | None,
    ) -> LabelScore:
        raise NotImplementedError


class _YesNoScorer(_LabelScorer):
    """Questions answered yes or no; balanced accuracy, F1, precision, recall and (with log-probs) AUC."""

    def _extra(self, conversations: list[Conversation]) -> list[float] | None:
        if not self.llm.supports_logprobs or not conversations:
            return None
        step = len(conversations) if self.batch_size is None else self.batch_size
        probabilities: list[float] = []
        for start in tqdm(
            range(0, len(conversations), step), desc=f"{self.desc} P(yes)", disable=not self.progress
        ):
            logprobs = self.llm.option_logprobs(
                conversations[start : start + step], ["yes", "Yes", "no", "No"]
            )
            probabilities += yes_probability(logprobs).tolist()
        return probabilities

    def _result(
        self,
        concept: int,
        label: str,
        questions: list[_Question],
        answers: list[str],
        extra: list[float] | None,
    ) -> LabelScore:
        truth = np.array([bool(q.truth) for q in questions], dtype=bool)
        read = [prompts.parse_yes_no(answer) for answer in answers]
        predicted = np.array([r is True for r in read], dtype=bool)
        detail = {
            "n_positive": float(truth.sum()),
            "n_negative": float((~truth).sum()),
            "unparsed": float(sum(r is None for r in read)),
        }
        if truth.all() or not truth.any():
            return LabelScore(concept, label, self.method, float("nan"), detail)
        detail["accuracy"] = float((truth == predicted).mean())
        detail["precision"] = float(precision_score(truth, predicted, zero_division=0))
        detail["recall"] = float(recall_score(truth, predicted, zero_division=0))
        detail["f1"] = float(f1_score(truth, predicted, zero_division=0))
        if extra is not None:
            detail["auc"] = float(roc_auc_score(truth, np.array(extra)))
        value = float(balanced_accuracy_score(truth, predicted))
        detail["balanced_accuracy"] = value
        return LabelScore(concept, label, self.method, value, detail)


class DetectionScorer(_YesNoScorer):
    """Does the label tell activating contexts from non-activating ones? (module docstring)

    Args:
        explainer: a fitted `ConceptExplainer` (None is accepted when `score` gets `ConceptCodes`).
        llm: the judge: a `ChatLLM`, a `(model, tokenizer)` pair or a function `conversation -> str`.
        k_examples: top activating contexts asked about.
        n_quantiles: quantiles of the other firing tokens.
        n_random: contexts drawn from each quantile.
        n_inactive: non-activating contexts asked about.
        context: tokens shown each side of an example.
        threshold: fraction of the concept's largest activation above which a token fires.
        max_new_tokens: the longest answer.
        seed: seeds the sampling.
        batch_size: conversations per LLM call (None: all at once).
        progress: show progress bars.

    Examples:
        >>> import torch
        >>> from interpreto.concepts.interpret import ConceptCodes
        >>> from interpreto.model.llm import CallableLLM
        >>> words = [["the", " red", " car"], ["a", " blue", " sky"], ["the", " old", " dog"], ["a", " big", " cat"]]
        >>> codes = ConceptCodes(
        ...     texts=["".join(w) for w in words],
        ...     tokens=words,
        ...     codes=[torch.tensor([[0.0], [v], [0.0]]) for v in (2.0, 1.0, 0.0, 0.0)],
        ...     scored=[torch.tensor([False, True, True])] * 4,
        ... )
        >>> judge = CallableLLM(lambda c: "yes" if any(w in c[-1]["content"] for w in ("red", "blue")) else "no")
        >>> scores = DetectionScorer(None, judge, n_inactive=2, progress=False).score(codes, {0: "colours"})
        >>> scores[0].value, scores[0].detail["f1"]
        (1.0, 1.0)
    """

    method = desc = "detection"

    def __init__(
        self,
        explainer: Any,
        llm: Any,
        k_examples: int = 5,
        n_quantiles: int = 5,
        n_random: int = 2,
        n_inactive: int = 15,
        context: int = 8,
        threshold: float = 0.1,
        max_new_tokens: int = 4,
        seed: int = 0,
        batch_size: int | None = None,
        progress: bool = True,
    ):
        super().__init__(
            explainer, llm, k_examples, n_quantiles, n_random, n_inactive, context, threshold, max_new_tokens,
            seed, batch_size, progress,
        )  # fmt: skip

    def _questions(self, label: str, examples: ConceptExamples, rng: np.random.Generator) -> list[_Question]:
        shown = [(e, True) for e in examples.activating] + [(e, False) for e in examples.inactive]
        return [
            _Question(
                _judge_conversation(
                    prompts.DETECTION_USER.format(label=label, text=prompts.render(e.context))
                ),
                truth,
            )
            for e, truth in shown
        ]


class FuzzingScorer(_YesNoScorer):
    """Does the label tell the tokens on which the concept fires from other tokens of the same contexts?

    Each activating context is asked about twice: with its firing tokens highlighted (truth: yes) and with as
    many tokens highlighted at random among those that do not fire (truth: no; skipped when every token fires).
    `n_inactive` non-activating contexts with random highlights are added as further "no" questions.

    Args:
        explainer: a fitted `ConceptExplainer` (None is accepted when `score` gets `ConceptCodes`).
        llm: the judge: a `ChatLLM`, a `(model, tokenizer)` pair or a function `conversation -> str`.
        k_examples: top activating contexts asked about.
        n_quantiles: quantiles of the other firing tokens.
        n_random: contexts drawn from each quantile.
        n_inactive: non-activating contexts with random highlights (none by default).
        context: tokens shown each side of an example.
        threshold: fraction of the concept's largest activation above which a token fires.
        max_new_tokens: the longest answer.
        seed: seeds the sampling.
        batch_size: conversations per LLM call (None: all at once).
        progress: show progress bars.

    Examples:
        >>> import torch
        >>> from interpreto.concepts.interpret import ConceptCodes
        >>> from interpreto.model.llm import CallableLLM
        >>> words = [["the", " red", " car"], ["a", " blue", " sky"]]
        >>> codes = ConceptCodes(
        ...     texts=["".join(w) for w in words],
        ...     tokens=words,
        ...     codes=[torch.tensor([[0.0], [v], [0.0]]) for v in (2.0, 1.0)],
        ...     scored=[torch.tensor([False, True, True])] * 2,
        ... )
        >>> judge = CallableLLM(lambda c: "yes" if "<<red>>" in c[-1]["content"] or "<<blue>>" in c[-1]["content"] else "no")
        >>> FuzzingScorer(None, judge, progress=False).score(codes, {0: "colours"})[0].value
        1.0
    """

    method = desc = "fuzzing"

    def __init__(
        self,
        explainer: Any,
        llm: Any,
        k_examples: int = 5,
        n_quantiles: int = 5,
        n_random: int = 2,
        n_inactive: int = 0,
        context: int = 8,
        threshold: float = 0.1,
        max_new_tokens: int = 4,
        seed: int = 0,
        batch_size: int | None = None,
        progress: bool = True,
    ):
        super().__init__(
            explainer, llm, k_examples, n_quantiles, n_random, n_inactive, context, threshold, max_new_tokens,
            seed, batch_size, progress,
        )  # fmt: skip

    def _questions(self, label: str, examples: ConceptExamples, rng: np.random.Generator) -> list[_Question]:
        def ask_about(example: Any, marks: list[bool], truth: bool) -> _Question:
            text = prompts.render(example.context, marks)
            return _Question(_judge_conversation(prompts.FUZZING_USER.format(label=label, text=text)), truth)

        questions, counts = [], []
        for example in examples.activating:
            fires = examples.fires(example)
            counts.append(sum(fires))
            questions.append(ask_about(example, fires, True))
            wrong = _random_marks(example, fires, sum(fires), rng)
            if wrong is not None:
                questions.append(ask_about(example, wrong, False))
        for example in examples.inactive:
            wrong = _random_marks(example, [False] * len(example.context), int(rng.choice(counts)), rng)
            if wrong is not None:
                questions.append(ask_about(example, wrong, False))
        return questions


class SimulationScorer(_LabelScorer):
    """Can the LLM predict the concept's per-token activations from the label? (module docstring)

    Args:
        explainer: a fitted `ConceptExplainer` (None is accepted when `score` gets `ConceptCodes`).
        llm: the simulator: a `ChatLLM`, a `(model, tokenizer)` pair or a function `conversation -> str`.
        k_examples: top activating contexts simulated.
        n_quantiles: quantiles of the other firing tokens.
        n_random: contexts drawn from each quantile.
        n_inactive: non-activating contexts simulated.
        context: tokens shown each side of an example.
        threshold: fraction of the concept's largest activation above which a token fires.
        max_new_tokens: the longest answer (about four tokens per line of the answer).
        seed: seeds the sampling.
        batch_size: conversations per LLM call (None: all at once).
        progress: show progress bars.

    Examples:
        >>> import torch
        >>> from interpreto.concepts.interpret import ConceptCodes
        >>> from interpreto.model.llm import CallableLLM
        >>> codes = ConceptCodes(
        ...     texts=["the red car"], tokens=[["the", " red", " car"]],
        ...     codes=[torch.tensor([[0.0], [2.0], [0.0]])], scored=[torch.tensor([True, True, True])],
        ... )
        >>> def simulate(conversation):
        ...     tokens = conversation[-1]["content"].split("Tokens:\\n")[1].split("\\n\\n")[0].splitlines()
        ...     return "\\n".join(f"{t}\\t{10 if t == 'red' else 0}" for t in tokens)
        >>> score = SimulationScorer(None, CallableLLM(simulate), progress=False).score(codes, {0: "colours"})[0]
        >>> score.value, score.detail["n_tokens"]
        (1.0, 3.0)
    """

    method = desc = "simulation"

    def __init__(
        self,
        explainer: Any,
        llm: Any,
        k_examples: int = 2,
        n_quantiles: int = 2,
        n_random: int = 1,
        n_inactive: int = 2,
        context: int = 8,
        threshold: float = 0.1,
        max_new_tokens: int = 200,
        seed: int = 0,
        batch_size: int | None = None,
        progress: bool = True,
    ):
        super().__init__(
            explainer, llm, k_examples, n_quantiles, n_random, n_inactive, context, threshold, max_new_tokens,
            seed, batch_size, progress,
        )  # fmt: skip

    def _questions(self, label: str, examples: ConceptExamples, rng: np.random.Generator) -> list[_Question]:
        questions = []
        for example in examples.activating + examples.inactive:
            shown = [token for token in example.context if token.text.strip()]
            if not shown:
                continue
            truth = [
                min(10.0, max(0.0, 10.0 * token.activation / examples.peak)) if token.scored else None
                for token in shown
            ]
            user = prompts.SIMULATION_USER.format(
                label=label,
                text=prompts.render(example.context),
                tokens="\n".join(token.text.strip() for token in shown),
            )
            system = {"role": "system", "content": prompts.SIMULATION_SYSTEM}
            questions.append(_Question([system, {"role": "user", "content": user}], truth))
        return questions

    def _result(
        self,
        concept: int,
        label: str,
        questions: list[_Question],
        answers: list[str],
        extra: list[float] | None,
    ) -> LabelScore:
        true, predicted, read, shown = [], [], 0, 0
        for question, answer in zip(questions, answers, strict=True):
            values, n_read = prompts.parse_simulation(answer, len(question.truth))
            read, shown = read + n_read, shown + len(question.truth)
            for t, p in zip(question.truth, values, strict=True):
                if t is not None:
                    true.append(t)
                    predicted.append(p)
        detail = {"n_contexts": float(len(questions)), "n_tokens": float(len(true))}
        if not true:
            return LabelScore(concept, label, self.method, float("nan"), detail)
        detail["parsed_fraction"] = read / shown
        true_arr, predicted_arr = np.array(true), np.array(predicted)
        constant = bool(np.ptp(true_arr) == 0 or np.ptp(predicted_arr) == 0)
        value = 0.0 if constant else float(np.corrcoef(true_arr, predicted_arr)[0, 1])
        detail["constant"] = float(constant)
        detail["pearson"] = value
        return LabelScore(concept, label, self.method, value, detail)


def _judge_conversation(user: str) -> Conversation:
    """A yes/no question as a conversation with the judge's system prompt."""
    return [{"role": "system", "content": prompts.JUDGE_SYSTEM}, {"role": "user", "content": user}]


def yes_probability(logprobs: torch.Tensor) -> torch.Tensor:
    """P(yes) normalised over yes and no from `(n, 4)` log-probabilities of `yes, Yes, no, No` (0.5 when the
    backend gives none of them)."""
    probabilities = torch.nan_to_num(logprobs.double().exp(), nan=0.0)
    yes = probabilities[:, :2].sum(dim=1)
    total = yes + probabilities[:, 2:].sum(dim=1)
    return torch.where(total > 0, yes / total.clamp_min(1e-300), torch.full_like(total, 0.5))


def _random_marks(example: Any, fires: list[bool], count: int, rng: np.random.Generator) -> list[bool] | None:
    """`count` (at least 1) highlights at random among the shown tokens that do not fire; None when there are none."""
    candidates = [k for k, token in enumerate(example.context) if not fires[k] and token.text.strip()]
    if not candidates:
        return None
    picked = set(rng.choice(candidates, size=min(max(count, 1), len(candidates)), replace=False).tolist())
    return [k in picked for k in range(len(example.context))]
