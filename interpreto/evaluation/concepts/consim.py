"""`ConSim`: how well concept explanations let an LLM simulate a classifier (Poché et al. 2025).

Poché, Jacovi, Picard, Boutin & Jourdan 2025, "ConSim: Measuring Concept-Based Explanations' Effectiveness with
Automated Simulatability", ACL 2025, https://aclanthology.org/2025.acl-long.279/.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from scipy import stats

from interpreto.evaluation.concepts import consim_prompts as prompting
from interpreto.evaluation.concepts.base import ConceptMetricResult
from interpreto.evaluation.concepts.consim_inputs import (
    POOLINGS,
    check_class_names,
    class_ids,
    classifier_predictions,
    concept_contributions,
    is_int,
    sample_concept_activations,
)
from interpreto.model._encoding import texts_of
from interpreto.model.llm import Conversation, as_chat_llm
from interpreto.model.running import check_integer
from interpreto.model.split_points import ModelWithSplitPoints

SETTINGS = ("baseline", "concepts", "upper_bound")


@dataclass
class ConSimPrompts:
    """The conversations of one seed and setting, and the answers that count as right.

    Attributes:
        seed: the seed that drew the split.
        setting: `"baseline"`, `"concepts"` or `"upper_bound"`.
        conversations: one per evaluation sample.
        expected: the model's predicted class name on each evaluation sample.
        learning: the learning-phase sample indices (into the texts), in prompt order.
        evaluation: the evaluation sample indices, in the order of `conversations`.
    """

    seed: int
    setting: str
    conversations: list[Conversation]
    expected: list[str]
    learning: list[int]
    evaluation: list[int]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class ConSim:
    """Concept-based simulatability: how much concept explanations help an LLM (the meta-predictor) predict
    what the model predicts. Higher is better.

    For each seed, `n_learning + n_eval` distinct texts are drawn and split into a learning phase and an
    evaluation phase, disjoint in sample indices and in texts (duplicated texts are drawn once). The LLM sees
    the learning samples with the model's predictions (a few-shot chat: each sample a user turn, the
    prediction the assistant's answer), then is asked, one evaluation sample per conversation, which class the
    model predicts; its answer is right when it names the MODEL's prediction on that evaluation
    sample (not the gold label). Three settings are asked:

    - `"baseline"` (the paper's L2): learning samples and predictions, no concepts;
    - `"concepts"`: the learning samples also show their concept explanation, and so do the evaluation samples
      (their active concepts, which the input alone determines; `eval_concepts=False` shows the evaluation
      texts alone, the paper's E3). With `importances`, the learning samples also show each concept's
      contribution to the predicted class, and the system message the per-class importances (the paper's
      global explanation);
    - `"upper_bound"` (the paper's U1, needs `importances`): the evaluation samples also show the contributions
      to the model's predicted class, i.e. explanations computed knowing the output.

    A sample's concept explanation is its top `top_k` concepts by sample-level activation, the `pooling` (max or
    mean) over its text tokens (special tokens left out) of `explainer.encode` of its activations at the
    explainer's split point, named by `concept_labels`; with `importances` of shape `(nb_concepts, n_classes)`,
    the contribution of concept `c` to class `k` is `activation_c * importances[c, k]`. Values are shown as
    levels (`++`, `+`, `-`, `--`, see `consim_prompts`).

    The score of a seed is `accuracy(concepts) - accuracy(baseline)`, the paper's gain over the L2 baseline;
    `value` is its mean over seeds and `details["ci95"]` a 95% Student t interval over seeds,
    `mean ± t(0.975, n - 1) * std / sqrt(n)` (std with n - 1), as for each setting's accuracy. An answer naming
    no class counts as wrong (`details["n_unparsed"]`).

    Args:
        model: the classifier, a `ModelWithSplitPoints` or a `(model, tokenizer)` pair whose model returns
            `(batch, n_classes)` `.logits` (predictions are their argmax); None takes the explainer's split
            model, or needs `predictions=` in `compute`.
        explainer: a fitted concept explainer of the classifier's activations; None needs
            `concept_activations=` in `compute`.
        llm: the meta-predictor, anything `as_chat_llm` accepts: a `ChatLLM` (`LocalChatLLM`, `OpenAIChatLLM`),
            a `(model, tokenizer)` chat model pair, or a function `conversation -> answer`. Not needed for
            `prompts`.
        n_learning: learning-phase samples per seed.
        n_eval: evaluation samples per seed.
        seeds: at least two distinct seeds, one split each (the paper used five).
        concept_labels: `{concept: name}`; unnamed concepts are shown as `"concept 3"`.
        importances: concept importance per class: a `(nb_concepts, n_classes)` tensor, a `(n_texts,
            nb_concepts, n_classes)` tensor of per-sample contributions, or a function `(texts, activations
            (n, nb_concepts)) -> (n, nb_concepts, n_classes)` (e.g. concept attributions); None shows
            activations only.
        top_k: concepts shown per explanation.
        pooling: `"max"` or `"mean"` over a sample's tokens.
        eval_concepts: show the evaluation samples' active concepts in the `"concepts"` setting.
        upper_bound: ask the `"upper_bound"` setting; None asks it when `importances` is given.
        max_new_tokens: the LLM's answer length.
        batch_size: texts per model forward pass; None uses the split model's (else 32).
        progress: show progress bars.

    Examples:
        >>> import torch
        >>> from interpreto.evaluation import ConSim
        >>> texts = [f"review {i}" for i in range(12)]
        >>> predictions = [i % 2 for i in range(12)]  # the model says positive for odd reviews
        >>> activations = torch.tensor([[0.0, 1.0] if i % 2 else [1.0, 0.0] for i in range(12)])
        >>> def simulator(conversation):  # a stand-in LLM reading the concepts of the text asked
        ...     return "positive" if "praise" in conversation[-1]["content"] else "negative"
        >>> consim = ConSim(llm=simulator, n_learning=4, n_eval=6, seeds=(0, 1, 2),
        ...                 concept_labels={0: "complaint", 1: "praise"})
        >>> result = consim.compute(texts, class_names=["negative", "positive"], predictions=predictions,
        ...                         concept_activations=activations)
        >>> result.details["accuracy"]["concepts"], result.details["n_unparsed"]
        (1.0, 0)
    """

    name = "ConSim"
    higher_is_better = True

    def __init__(
        self,
        model: ModelWithSplitPoints | tuple[Any, Any] | None = None,
        explainer: Any = None,
        llm: Any = None,
        n_learning: int = 20,
        n_eval: int = 20,
        seeds: Sequence[int] = (0, 1, 2, 3, 4),
        concept_labels: dict[int, str] | None = None,
        importances: torch.Tensor | Callable | None = None,
        top_k: int = 5,
        pooling: str = "max",
        eval_concepts: bool = True,
        upper_bound: bool | None = None,
        max_new_tokens: int = 16,
        batch_size: int | None = None,
        progress: bool = False,
    ):
        check_integer("n_learning", n_learning)
        check_integer("n_eval", n_eval)
        check_integer("top_k", top_k)
        check_integer("max_new_tokens", max_new_tokens)
        check_integer("batch_size", batch_size, allow_none=True)
        seeds = list(seeds) if isinstance(seeds, Sequence) and not isinstance(seeds, str) else [seeds]
        if len(seeds) < 2 or len(set(seeds)) != len(seeds) or not all(is_int(s) for s in seeds):
            raise ValueError(
                f"seeds must be at least two distinct integers (the 95% interval is over seeds), got {seeds!r}."
            )
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is unknown: use one of {list(POOLINGS)}.")
        if upper_bound and importances is None:
            raise ValueError(
                "upper_bound=True needs importances= (the contributions to the predicted class shown at "
                "evaluation): pass them, or leave upper_bound=None."
            )
        self.model = model
        self.explainer = explainer
        self.llm = llm
        self.n_learning = n_learning
        self.n_eval = n_eval
        self.seeds = seeds
        self.concept_labels = concept_labels
        self.importances = importances
        self.top_k = top_k
        self.pooling = pooling
        self.eval_concepts = eval_concepts
        self.upper_bound = importances is not None if upper_bound is None else upper_bound
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.progress = progress

    @property
    def settings(self) -> tuple[str, ...]:
        """The settings asked, in order."""
        return SETTINGS if self.upper_bound else SETTINGS[:2]

    def compute(
        self,
        texts: list[str],
        class_names: Sequence[str],
        predictions: Sequence[int | str] | torch.Tensor | None = None,
        concept_activations: torch.Tensor | None = None,
        labels: Sequence[int | str] | torch.Tensor | None = None,
    ) -> ConceptMetricResult:
        """The ConSim score of the explanations on `texts`.

        Args:
            texts: the samples to draw from (at least `n_learning + n_eval` distinct texts).
            class_names: the name of each class, in the model's output order.
            predictions: the model's prediction on each text (class indices or names); None computes them.
            concept_activations: `(n_texts, nb_concepts)` sample-level concept activations; None computes them
                with the explainer.
            labels: gold labels (indices or names); when given, each seed draws as many texts the model gets
                right as wrong where it can (the paper's selection). Never the expected answers.

        Returns:
            A `ConceptMetricResult` whose `value` is the mean gain over seeds; `details` holds each setting's
            mean `accuracy` and `accuracy_ci95`, the score's `ci95` and `std`, `upper_bound_gain`,
            `n_unparsed` (and `n_unparsed_by_setting`), and `per_seed` (splits, accuracies, answers).
        """
        if self.llm is None:
            raise ValueError(
                "llm is None: pass llm= to ConSim (or call prompts() to get the conversations only)."
            )
        llm = as_chat_llm(self.llm)
        names = check_class_names(class_names)
        prompts = self.prompts(texts, names, predictions, concept_activations, labels)
        answers = llm.complete(
            [c for p in prompts for c in p.conversations], max_new_tokens=self.max_new_tokens
        )
        per_seed = {
            seed: {"seed": seed, "accuracy": {}, "n_unparsed": {}, "answers": {}} for seed in self.seeds
        }
        start = 0
        for prompt in prompts:
            given = answers[start : start + len(prompt.conversations)]
            start += len(prompt.conversations)
            parsed = [prompting.parse_answer(answer, names) for answer in given]
            right = sum(p is not None and names[p] == e for p, e in zip(parsed, prompt.expected, strict=True))
            row = per_seed[prompt.seed]
            row["accuracy"][prompt.setting] = right / len(prompt.expected)
            row["n_unparsed"][prompt.setting] = sum(p is None for p in parsed)
            row["answers"][prompt.setting] = list(given)
            row["learning"], row["evaluation"] = prompt.learning, prompt.evaluation
        rows = [per_seed[seed] for seed in self.seeds]
        for row in rows:
            row["score"] = row["accuracy"]["concepts"] - row["accuracy"]["baseline"]
        scores = [row["score"] for row in rows]
        mean, low, high = t_interval(scores)
        accuracy, accuracy_ci = {}, {}
        for setting in self.settings:
            m, lo, hi = t_interval([row["accuracy"][setting] for row in rows])
            accuracy[setting], accuracy_ci[setting] = m, [lo, hi]
        by_setting = {s: sum(row["n_unparsed"][s] for row in rows) for s in self.settings}
        details = {
            "accuracy": accuracy,
            "accuracy_ci95": accuracy_ci,
            "ci95": [low, high],
            "std": float(torch.tensor(scores, dtype=torch.float64).std()),
            "upper_bound_gain": (
                _mean([row["accuracy"]["upper_bound"] - row["accuracy"]["baseline"] for row in rows])
                if self.upper_bound
                else None
            ),
            "n_unparsed": sum(by_setting.values()),
            "n_unparsed_by_setting": by_setting,
            "per_seed": rows,
            "seeds": list(self.seeds),
            "n_learning": self.n_learning,
            "n_eval": self.n_eval,
            "class_names": names,
            "settings": list(self.settings),
            "eval_concepts": self.eval_concepts,
        }
        return ConceptMetricResult(self.name, mean, self.higher_is_better, details=details)

    def prompts(
        self,
        texts: list[str],
        class_names: Sequence[str],
        predictions: Sequence[int | str] | torch.Tensor | None = None,
        concept_activations: torch.Tensor | None = None,
        labels: Sequence[int | str] | torch.Tensor | None = None,
    ) -> list[ConSimPrompts]:
        """The conversations `compute` would send, one `ConSimPrompts` per seed and setting; no LLM is called.
        Same arguments as `compute` (the model still runs when predictions or activations are not given)."""
        texts = texts_of(texts)
        names = check_class_names(class_names)
        labels = None if labels is None else class_ids(labels, names, "labels", len(texts))
        if predictions is not None:
            predictions = class_ids(predictions, names, "predictions", len(texts))
        elif labels is not None:  # the balanced draw needs every prediction
            predictions = self._predictions(texts, list(range(len(texts))), len(names))
        splits = [self.draw(texts, seed, labels, predictions) for seed in self.seeds]
        needed = sorted({i for learning, evaluation in splits for i in learning + evaluation})
        if predictions is None:
            predictions = dict(zip(needed, self._predictions(texts, needed, len(names)), strict=True))
        activations = self._activations(texts, needed, concept_activations)
        contributions = self._contributions(texts, needed, activations, len(names))
        views = self._views(texts, needed, names, predictions, activations, contributions)
        global_explanation = None
        if isinstance(self.importances, torch.Tensor) and self.importances.dim() == 2:
            global_explanation = prompting.global_lines(
                self.importances, names, self.concept_labels, self.top_k
            )
        out = []
        for seed, (learning, evaluation) in zip(self.seeds, splits, strict=True):
            expected = [names[predictions[i]] for i in evaluation]  # the model's, on the evaluation samples
            for setting in self.settings:
                lp = [views[i][setting][0] for i in learning]
                ep = [views[i][setting][1] for i in evaluation]
                explained = global_explanation if setting != "baseline" else None
                conversations = prompting.conversations(names, lp, ep, explained)
                out.append(ConSimPrompts(seed, setting, conversations, expected, learning, evaluation))
        return out

    def draw(
        self,
        texts: list[str],
        seed: int,
        labels: Sequence[int] | None = None,
        predictions: Sequence[int] | None = None,
    ) -> tuple[list[int], list[int]]:
        """`(learning, evaluation)` sample indices for a seed: `n_learning + n_eval` distinct texts (the first
        index of each text), shuffled, the first `n_learning` for learning. With `labels` and `predictions`,
        texts the model gets right and wrong are taken in turn while both last.

        Raises:
            ValueError: naming `n_learning` and `n_eval` when there are fewer distinct texts than they ask.
        """
        first: dict[str, int] = {}
        for i, text in enumerate(texts):
            first.setdefault(text, i)
        candidates = list(first.values())
        total = self.n_learning + self.n_eval
        if total > len(candidates):
            raise ValueError(
                f"n_learning + n_eval = {self.n_learning} + {self.n_eval} = {total} but texts has only "
                f"{len(candidates)} distinct texts: lower n_learning or n_eval, or pass more texts."
            )
        rng = random.Random(seed)
        if labels is None or predictions is None:
            chosen = rng.sample(candidates, total)
        else:
            right = [i for i in candidates if predictions[i] == labels[i]]
            wrong = [i for i in candidates if predictions[i] != labels[i]]
            rng.shuffle(right)
            rng.shuffle(wrong)
            chosen = [i for pair in zip(right, wrong, strict=False) for i in pair][:total]
            rest = right[len(wrong) :] if len(right) > len(wrong) else wrong[len(right) :]
            chosen += rest[: total - len(chosen)]
            rng.shuffle(chosen)
        return chosen[: self.n_learning], chosen[self.n_learning :]

    # ---- internals ------------------------------------------------------------------------------------------

    def _views(self, texts, needed, names, predictions, activations, contributions) -> dict:
        """Per needed sample and setting, its `(learning view, evaluation view)`."""
        views = {}
        for row, i in enumerate(needed):
            concepts = prompting.render(
                prompting.concept_levels(activations[row], self.top_k, signed=False), self.concept_labels
            )
            contribution = None
            if contributions is not None:
                levels = prompting.concept_levels(
                    contributions[row, :, predictions[i]], self.top_k, signed=True
                )
                contribution = prompting.render(levels, self.concept_labels)
            name = names[predictions[i]]
            plain = prompting.SampleView(texts[i])
            explained = prompting.SampleView(texts[i], concepts, contribution)
            views[i] = {
                "baseline": (prompting.SampleView(texts[i], prediction=name), plain),
                "concepts": (
                    prompting.SampleView(texts[i], concepts, contribution, name),
                    prompting.SampleView(texts[i], concepts) if self.eval_concepts else plain,
                ),
                "upper_bound": (prompting.SampleView(texts[i], concepts, contribution, name), explained),
            }
        return views

    def _activations(self, texts: list[str], needed: list[int], given: torch.Tensor | None) -> torch.Tensor:
        """`(len(needed), nb_concepts)` sample-level activations of the needed texts."""
        if given is not None:
            if not isinstance(given, torch.Tensor) or given.dim() != 2 or given.shape[0] != len(texts):
                raise ValueError(
                    f"concept_activations must be a (n_texts, nb_concepts) = ({len(texts)}, ...) tensor, got "
                    f"{tuple(given.shape) if isinstance(given, torch.Tensor) else type(given).__name__}."
                )
            return given[needed].detach().float().cpu()
        if self.explainer is None:
            raise ValueError(
                "explainer is None: pass a fitted concept explainer to ConSim, or concept_activations= to compute."
            )
        return sample_concept_activations(
            self.explainer, [texts[i] for i in needed], self.pooling, self.batch_size, self.progress
        )

    def _contributions(self, texts, needed, activations, n_classes) -> torch.Tensor | None:
        """`(len(needed), nb_concepts, n_classes)` concept contributions per class, or None."""
        if self.importances is None:
            return None
        return concept_contributions(self.importances, texts, needed, activations, n_classes)

    def _predictions(self, texts: list[str], indices: list[int], n_classes: int) -> list[int]:
        """The classifier's argmax on `texts[i]` for `i` in `indices`."""
        model, tokenizer, max_length, truncation, size = self._classifier()
        chunk = [texts[i] for i in indices]
        return classifier_predictions(
            model, tokenizer, chunk, n_classes, size, max_length, truncation, self.progress
        )

    def _classifier(self) -> tuple[Any, Any, int | None, bool, int]:
        model = self.model
        if model is None:
            model = getattr(self.explainer, "model_with_split_points", None)
        if isinstance(model, ModelWithSplitPoints):
            size = self.batch_size or model.batch_size
            return model.model, model.tokenizer, model.max_length, model.truncation, size
        if isinstance(model, tuple) and len(model) == 2:
            return model[0], model[1], None, False, self.batch_size or 32
        raise ValueError(
            "model: pass a ModelWithSplitPoints or a (model, tokenizer) classifier pair to ConSim, or "
            "predictions= to compute."
        )


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """`(mean, low, high)`: the Student t interval `mean ± t((1 + confidence) / 2, n - 1) * s / sqrt(n)` with
    `s` the standard deviation with `n - 1`.

    Examples:
        >>> mean, low, high = t_interval([0.1, 0.3])
        >>> round(mean, 3), round(high - mean, 3)  # t(0.975, 1) = 12.706, s / sqrt(2) = 0.1
        (0.2, 1.271)
    """
    n = len(values)
    if n < 2:
        raise ValueError(f"values: a t interval needs at least two values, got {n}.")
    mean = _mean(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return mean, mean - half, mean + half


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
