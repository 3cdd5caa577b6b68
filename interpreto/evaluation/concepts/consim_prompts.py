"""ConSim's prompts: how a sample's concept explanation is written, the conversations the meta-predictor reads,
and how its answers are read back.

A concept explanation is a short list `name (level)`: the sample's values (concept activations, or concept
contributions to a class) are divided by the sum of their absolute values, and each concept whose share passes
5% gets a level, as in Poché et al. 2025: `++` (share >= 0.3), `+` (>= 0.05), `-` (<= -0.05), `--` (<= -0.3),
the `top_k` largest shares first. Activations keep their positive part only (a concept's absence is not shown).

Each evaluation sample is asked in its own conversation: a system message (the task, the classes, the global
explanation if any), the learning-phase samples as user turns answered by the model's predictions as assistant
turns (a few-shot chat, which even a 135M chat model follows), then the evaluation sample as the last user turn,
with its explanation in the concept settings. The answer's first non-empty line is matched against the
class names, case and punctuation aside, the longest name first ("very negative" before "negative").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from interpreto.model.llm import Conversation

LEVELS = ((0.3, "++"), (0.05, "+"))  # share thresholds; the same, negated, give "--" and "-"
LABEL_CHARS = 100

INTRO = (
    "You simulate a text classifier. Learn from the examples how it behaves, then predict the class it gives "
    "to a new text. What matters is the classifier's prediction, not the true class: it makes mistakes."
)
CONCEPTS_HELP = (
    "'Concepts' lists the classifier's internal concepts found in a text, as name (level): ++ strongly "
    "present, + present."
)
CONTRIBUTIONS_HELP = (
    "'Contributions to the prediction' lists how much each concept pushed the classifier toward its "
    "prediction: ++ strongly for, + for, - against, -- strongly against."
)


@dataclass
class SampleView:
    """What a prompt shows of one sample.

    Attributes:
        text: the sample's text.
        concepts: its rendered concept activations, or None when not shown.
        contributions: its rendered contributions to the predicted class, or None when not shown.
        prediction: the model's predicted class name (learning phase only), or None.
    """

    text: str
    concepts: str | None = None
    contributions: str | None = None
    prediction: str | None = None

    def block(self) -> str:
        """The sample as prompt lines (the prediction is the answer, not part of them)."""
        lines = [f"Text: {one_line(self.text)}"]
        if self.concepts is not None:
            lines.append(f"Concepts: {self.concepts}")
        if self.contributions is not None:
            lines.append(f"Contributions to the prediction: {self.contributions}")
        return "\n".join(lines)


def level(share: float) -> str | None:
    """The level of a normalized value: `++`, `+`, `-`, `--`, or None below 5% in absolute value."""
    for threshold, symbol in LEVELS:
        if share >= threshold:
            return symbol
        if share <= -threshold:
            return "-" * len(symbol)
    return None


def concept_levels(values: torch.Tensor, top_k: int, signed: bool) -> list[tuple[int, str]]:
    """`(concept, level)` of the `top_k` concepts with the largest shares of `values` `(nb_concepts,)` whose
    level is not None, largest first (ties in concept order). Unsigned values keep their positive part."""
    values = values.detach().double().cpu().flatten()
    if not signed:
        values = values.clamp(min=0)
    total = float(values.abs().sum())
    if total == 0 or not torch.isfinite(values).all():
        return []
    shares = values / total
    order = torch.sort(shares.abs(), descending=True, stable=True).indices[:top_k].tolist()
    found = [(concept, level(float(shares[concept]))) for concept in order]
    return [(concept, symbol) for concept, symbol in found if symbol is not None]


def concept_label(concept: int, concept_labels: dict[int, str] | None) -> str:
    """The concept's name on one line (at most 100 characters); `"concept 3"` when it has no label."""
    label = (concept_labels or {}).get(concept)
    return one_line(f"concept {concept}" if label is None else str(label))[:LABEL_CHARS]


def render(levels: list[tuple[int, str]], concept_labels: dict[int, str] | None) -> str:
    """`name (level); name (level)`, or `none` for an empty list."""
    if not levels:
        return "none"
    return "; ".join(f"{concept_label(concept, concept_labels)} ({symbol})" for concept, symbol in levels)


def global_lines(
    importances: torch.Tensor, class_names: list[str], concept_labels: dict[int, str] | None, top_k: int
) -> list[str]:
    """One line per class: its `top_k` concepts by share of the class's column of `importances`
    `(nb_concepts, n_classes)`, signed."""
    return [
        f"- {name}: {render(concept_levels(importances[:, k], top_k, signed=True), concept_labels)}"
        for k, name in enumerate(class_names)
    ]


def conversations(
    class_names: list[str],
    learning: list[SampleView],
    evaluation: list[SampleView],
    global_explanation: list[str] | None = None,
) -> list[Conversation]:
    """One conversation per evaluation sample: the system message (task, classes, how to read explanations,
    global explanation), the learning samples as user turns each answered by the model's prediction as an
    assistant turn, then the evaluation sample as the last user turn."""
    shown = learning + evaluation
    parts = [INTRO, f"The classes are: {', '.join(class_names)}."]
    if any(view.concepts is not None for view in shown):
        parts.append(CONCEPTS_HELP)
    if any(view.contributions is not None for view in shown):
        parts.append(CONTRIBUTIONS_HELP)
    if global_explanation:
        parts.append(
            "How the concepts push the classifier toward each class:\n" + "\n".join(global_explanation)
        )
    parts.append(
        "Each user message is a text; answer with the class the classifier predicts for it, the class name "
        f"only (one of: {', '.join(class_names)}). The first answers are the classifier's own predictions."
    )
    turns: Conversation = [{"role": "system", "content": "\n\n".join(parts)}]
    for view in learning:
        turns.append({"role": "user", "content": view.block()})
        turns.append({"role": "assistant", "content": str(view.prediction)})
    return [[*turns, {"role": "user", "content": view.block()}] for view in evaluation]


def normalized(text: str) -> str:
    """Lower case, every run of punctuation, underscores and spaces turned into one space, stripped."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def parse_answer(answer: str, class_names: list[str]) -> int | None:
    """The class an answer names on its first non-empty line, or None when it names none.

    Names are matched as whole words, case and punctuation aside, the longest first (its words are then taken),
    and the match that comes first in the line wins.

    Examples:
        >>> parse_answer("Very negative.", ["negative", "very negative", "positive"])
        1
        >>> parse_answer("Prediction: POSITIVE\\nbecause...", ["negative", "positive"]), parse_answer("?", ["a"])
        (1, None)
    """
    lines = [line for line in str(answer).splitlines() if normalized(line)]
    if not lines:
        return None
    line = f" {normalized(lines[0])} "
    found = []
    for k in sorted(range(len(class_names)), key=lambda k: -len(normalized(class_names[k]))):
        name = f" {normalized(class_names[k])} "
        start = line.find(name)
        if start >= 0:
            found.append((start, k))
            line = line[:start] + " " * (len(name) - 1) + line[start + len(name) - 1 :]  # keep a boundary
    return min(found)[1] if found else None


def one_line(text: str) -> str:
    """`text` with its line breaks and runs of whitespace turned into single spaces."""
    return " ".join(str(text).split())
