"""Concept labels written by an LLM from a concept's examples (Bills et al. 2023; EleutherAI's delphi).

For each concept the LLM sees its top activating examples and a few examples drawn from quantiles of its other
activating tokens, each a context window with the firing tokens between `<<` and `>>` (see
`interpreto.concepts.interpret.prompts`), and answers with a short label.

Example rules (shared with the label scorers of `label_scoring`):

- A token *fires* when its activation is above `threshold` times the concept's largest activation over the
  scored tokens of the data (`ConceptCodes.scored`: special tokens and position 0 never count). Activating
  examples are firing tokens, shown with their context; highlights mark the firing tokens of a context (the
  example's own token always); non-activating examples are contexts in which no scored token fires.
- Top examples: the `k_examples` highest firing tokens, one per token text (case-sensitive, stripped).
  Quantile examples: the other firing tokens are ranked and cut into `n_quantiles` equal parts, and `n_random`
  are drawn from each, with a generator seeded by `(seed, concept)`: the same seed and data give the same
  examples whatever other concepts are asked for. A token within the context of an example already picked is
  not picked again (it is shown, and highlighted, there); nor is it as the centre of a non-activating context.
- A concept that never fires (largest activation <= 0) has no examples.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from interpreto.concepts.interpret import prompts
from interpreto.concepts.interpret.codes import ConceptCodes, ConceptExample, resolve_concepts
from interpreto.model.llm import ChatLLM, Conversation, as_chat_llm


@dataclass
class ConceptExamples:
    """The examples of one concept (see the module docstring).

    Attributes:
        concept: the concept index.
        top: the top activating examples, by decreasing activation.
        quantile: examples drawn from the quantiles of the other firing tokens, lowest quantile first.
        inactive: contexts in which no scored token fires.
        threshold: the activation above which a token fires.
        peak: the concept's largest activation over the scored tokens.
    """

    concept: int
    top: list[ConceptExample] = field(default_factory=list)
    quantile: list[ConceptExample] = field(default_factory=list)
    inactive: list[ConceptExample] = field(default_factory=list)
    threshold: float = float("inf")
    peak: float = 0.0

    @property
    def activating(self) -> list[ConceptExample]:
        """Top and quantile examples."""
        return self.top + self.quantile

    def fires(self, example: ConceptExample) -> list[bool]:
        """Which tokens of the example's context fire (the example's own tokens always do)."""
        start, end = example.focus
        return [
            start <= k < end or (token.scored and token.activation > self.threshold)
            for k, token in enumerate(example.context)
        ]


def sample_examples(
    codes: ConceptCodes,
    concept: int,
    k_examples: int,
    n_quantiles: int,
    n_random: int,
    n_inactive: int = 0,
    context: int = 8,
    threshold: float = 0.1,
    seed: int = 0,
    salt: int = 0,
) -> ConceptExamples:
    """The top, quantile and non-activating examples of a concept (rules in the module docstring); the draws
    use a generator seeded by `(seed, concept, salt)` (the label scorers draw with another salt than labels)."""
    values, where = codes.values(concept)
    values, where = values.numpy(), where.numpy()
    if values.size == 0 or float(values.max()) <= 0:
        return ConceptExamples(concept)
    peak = float(values.max())
    found = ConceptExamples(concept, threshold=threshold * peak, peak=peak)
    rng = np.random.default_rng([seed, concept, salt])
    firing = np.nonzero(values > found.threshold)[0]
    firing = firing[np.argsort(-values[firing], kind="stable")]
    seen: set[str] = set()
    covered: set[tuple[int, int]] = set()  # (input, position) shown in a picked example's context

    def take(flat: int) -> ConceptExample:
        i, position = int(where[flat, 0]), int(where[flat, 1])
        covered.update((i, p) for p in range(position - context, position + context + 1))
        return codes.example(concept, i, position, context)

    for flat in firing.tolist():
        if len(found.top) == k_examples:
            break
        key = (int(where[flat, 0]), int(where[flat, 1]))
        text = codes.token_label(*key).strip()
        if text in seen or key in covered:
            continue
        seen.add(text)
        found.top.append(take(flat))
    rest = np.array([f for f in firing[::-1].tolist() if (int(where[f, 0]), int(where[f, 1])) not in covered])
    if n_random > 0 and n_quantiles > 0 and rest.size:
        for part in np.array_split(rest, min(n_quantiles, rest.size)):
            drawn: list[tuple[int, ConceptExample]] = []
            for flat in rng.permutation(part).tolist():
                if len(drawn) == n_random:
                    break
                if (int(where[flat, 0]), int(where[flat, 1])) not in covered:
                    drawn.append((flat, take(flat)))
            found.quantile += [example for _, example in sorted(drawn, key=lambda pair: pair[0])]
    if n_inactive > 0:
        quiet = np.nonzero(values <= found.threshold)[0]
        for flat in rng.permutation(quiet)[: 20 * n_inactive + 100].tolist():
            if (int(where[flat, 0]), int(where[flat, 1])) in covered:
                continue
            example = codes.example(concept, int(where[flat, 0]), int(where[flat, 1]), context)
            if all(not t.scored or t.activation <= found.threshold for t in example.context):
                found.inactive.append(example)
                take(flat)
                if len(found.inactive) == n_inactive:
                    break
    return found


class LLMLabels:
    """Short labels of concepts written by an LLM from their examples.

    Args:
        explainer: a fitted `ConceptExplainer` (with a `ModelWithSplitPoints` when `label` gets texts); None is
            accepted when `label` gets `ConceptCodes`.
        llm: the LLM that writes the labels: a `ChatLLM` (`LocalChatLLM`, `OpenAIChatLLM`, `CallableLLM`), a
            `(model, tokenizer)` pair or a function `conversation -> str`.
        k_examples: top activating examples shown.
        n_quantiles: quantiles of the other firing tokens.
        n_random: examples drawn from each quantile.
        context: tokens shown each side of an example.
        threshold: fraction of the concept's largest activation above which a token fires (and is highlighted).
        show_activations: also give the activations of the highlighted tokens, scaled to 0-10.
        few_shot: start the conversation with one worked example (helps small models keep to the format).
        max_new_tokens: the longest answer.
        seed: seeds the quantile sampling.
        batch_size: conversations per `llm.complete` call (None: all at once).
        progress: show progress bars (encoding texts, asking the LLM).

    Labels are cached by conversation: asking again for a concept whose prompt is unchanged (same data and
    parameters) does not call the LLM. `answers` holds the LLM's raw answer for each concept labelled last.

    Examples:
        >>> import torch
        >>> from interpreto.concepts.interpret import ConceptCodes
        >>> from interpreto.model.llm import CallableLLM
        >>> codes = ConceptCodes(
        ...     texts=["the red car", "a blue sky"],
        ...     tokens=[["the", " red", " car"], ["a", " blue", " sky"]],
        ...     codes=[torch.tensor([[0.0], [2.0], [0.0]]), torch.tensor([[0.0], [1.0], [0.0]])],
        ...     scored=[torch.tensor([False, True, True]), torch.tensor([False, True, True])],
        ... )
        >>> llm = CallableLLM(lambda conversation: "Label: colour words.")
        >>> labeller = LLMLabels(None, llm, few_shot=False, progress=False)
        >>> labeller.label(codes)
        {0: 'colour words'}
        >>> print(labeller.conversations(codes)[0][-1]["content"].splitlines()[0])
        Example 1: the <<red>> car
    """

    def __init__(
        self,
        explainer: Any,
        llm: Any,
        k_examples: int = 20,
        n_quantiles: int = 4,
        n_random: int = 2,
        context: int = 8,
        threshold: float = 0.1,
        show_activations: bool = False,
        few_shot: bool = True,
        max_new_tokens: int = 32,
        seed: int = 0,
        batch_size: int | None = None,
        progress: bool = True,
    ):
        check_counts(k_examples=k_examples, n_quantiles=n_quantiles, n_random=n_random, context=context)
        if k_examples < 1:
            raise ValueError(f"k_examples must be at least 1, got {k_examples}.")
        check_common(threshold, max_new_tokens, batch_size)
        self.explainer = explainer
        self.llm: ChatLLM = as_chat_llm(llm)
        self.k_examples, self.n_quantiles, self.n_random = k_examples, n_quantiles, n_random
        self.context, self.threshold = context, threshold
        self.show_activations, self.few_shot = show_activations, few_shot
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.batch_size, self.progress = batch_size, progress
        self.cache: dict[str, str] = {}
        self.answers: dict[int, str] = {}

    def examples(self, inputs: list[str] | ConceptCodes, concepts: Any = "all") -> dict[int, ConceptExamples]:
        """The examples each concept's prompt shows."""
        codes = resolve_codes(self.explainer, inputs, self.progress)
        return {
            concept: sample_examples(
                codes, concept, self.k_examples, self.n_quantiles, self.n_random, 0, self.context,
                self.threshold, self.seed,
            )
            for concept in resolve_concepts(concepts, codes.nb_concepts)
        }  # fmt: skip

    def conversations(
        self, inputs: list[str] | ConceptCodes, concepts: Any = "all"
    ) -> dict[int, Conversation]:
        """The conversation sent for each concept (concepts that never fire have none)."""
        found = self.examples(inputs, concepts)
        return {c: self._conversation(examples) for c, examples in found.items() if examples.activating}

    def label(self, inputs: list[str] | ConceptCodes, concepts: Any = "all") -> dict[int, str]:
        """A label for each concept.

        Args:
            inputs: texts (encoded with `ConceptCodes.compute(explainer, texts)`) or `ConceptCodes`.
            concepts: `"all"`, a concept index or a list of indices.

        Returns:
            `{concept: label}`. Concepts that never fire on the inputs get no label (they are left out, with a
            warning); an answer without a readable label gives `""` (with a warning).

        Raises:
            ValueError: naming `concepts` for an index outside `[0, nb_concepts)`, or `inputs` when they are
                missing or do not match the explainer.
        """
        codes = resolve_codes(self.explainer, inputs, self.progress)
        asked = resolve_concepts(concepts, codes.nb_concepts)
        conversations = self.conversations(codes, asked)
        silent = [c for c in asked if c not in conversations]
        if silent:
            warnings.warn(f"concepts {silent} never fire on these inputs: they get no label.", stacklevel=2)
        keys = {c: cache_key(conv, self.max_new_tokens) for c, conv in conversations.items()}
        missing = [c for c in conversations if keys[c] not in self.cache]
        answers = ask(
            self.llm, [conversations[c] for c in missing], self.max_new_tokens, self.batch_size,
            self.progress, "labels",
        )  # fmt: skip
        for concept, answer in zip(missing, answers, strict=True):
            self.cache[keys[concept]] = answer
        self.answers = {c: self.cache[keys[c]] for c in conversations}
        labels = {c: prompts.parse_label(answer) for c, answer in self.answers.items()}
        empty = [c for c, text in labels.items() if not text]
        if empty:
            warnings.warn(f"the LLM's answers for concepts {empty} hold no label: they get ''.", stacklevel=2)
        return labels

    def _conversation(self, examples: ConceptExamples) -> Conversation:
        lines, highlighted = [], []
        for k, example in enumerate(examples.activating, start=1):
            fires = examples.fires(example)
            hot = [
                token for token, on in zip(example.context, fires, strict=True) if on and token.text.strip()
            ]
            highlighted += [token.text.strip() for token in hot]
            line = f"Example {k}: {prompts.render(example.context, fires)}"
            if self.show_activations:
                values = [
                    f"{t.text.strip()}: {round(10 * max(t.activation, 0.0) / examples.peak)}" for t in hot
                ]
                line += f" ({', '.join(values)})"
            lines.append(line)
        words = ", ".join(dict.fromkeys(highlighted))
        system = prompts.LABEL_SYSTEM + (" " + prompts.ACTIVATIONS_NOTE if self.show_activations else "")
        conversation: Conversation = [{"role": "system", "content": system}]
        if self.few_shot:
            for shot_examples, shot_words, shot_answer in prompts.LABEL_FEW_SHOT:
                shot = prompts.LABEL_USER.format(examples=shot_examples, highlighted=shot_words)
                conversation += [
                    {"role": "user", "content": shot},
                    {"role": "assistant", "content": shot_answer},
                ]
        user = prompts.LABEL_USER.format(examples="\n".join(lines), highlighted=words)
        return [*conversation, {"role": "user", "content": user}]


# ---- shared with label_scoring --------------------------------------------------------------------------------


def resolve_codes(explainer: Any, inputs: Any, progress: bool) -> ConceptCodes:
    """`inputs` as `ConceptCodes` (texts are encoded with the explainer), checked against the explainer."""
    if isinstance(inputs, ConceptCodes):
        codes = inputs
    elif inputs is None or isinstance(inputs, (int, float)) or (not isinstance(inputs, str) and not inputs):
        raise ValueError(
            "inputs: pass the texts to read the concepts on, or ConceptCodes computed from them."
        )
    elif explainer is None:
        raise ValueError(
            "inputs: texts need an explainer to be encoded: pass a fitted explainer (or ConceptCodes instead)."
        )
    else:
        codes = ConceptCodes.compute(explainer, inputs, progress=progress)
    nb_concepts = getattr(explainer, "nb_concepts", None)
    if explainer is not None and nb_concepts is not None and codes.nb_concepts != nb_concepts:
        raise ValueError(
            f"inputs: these ConceptCodes have {codes.nb_concepts} concepts but the explainer has {nb_concepts}: "
            f"compute them with this explainer."
        )
    return codes


def ask(
    llm: ChatLLM,
    conversations: list[Conversation],
    max_new_tokens: int,
    batch_size: int | None,
    progress: bool,
    desc: str,
) -> list[str]:
    """The LLM's answers, `batch_size` conversations per `complete` call (None: one call)."""
    if not conversations:
        return []
    step = len(conversations) if batch_size is None else batch_size
    answers: list[str] = []
    for start in tqdm(range(0, len(conversations), step), desc=desc, disable=not progress):
        answers += llm.complete(conversations[start : start + step], max_new_tokens=max_new_tokens)
    return answers


def cache_key(conversation: Conversation, max_new_tokens: int) -> str:
    return json.dumps([conversation, max_new_tokens], sort_keys=True)


def check_counts(**counts: Any) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")


def check_common(threshold: Any, max_new_tokens: Any, batch_size: Any) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < 1:
        raise ValueError(
            f"threshold must be a fraction in [0, 1) of the largest activation, got {threshold!r}."
        )
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}.")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer or None (all at once), got {batch_size!r}.")


def check_labels(labels: Any, nb_concepts: int) -> dict[int, str]:
    """`labels` as `{concept: label}`, every key a concept index and every label a non-empty string."""
    if not isinstance(labels, dict) or not labels:
        raise ValueError(
            "labels must be a non-empty dict {concept index: label}, e.g. LLMLabels(...).label(...)."
        )
    checked = {}
    for concept, label in labels.items():
        if (
            isinstance(concept, bool)
            or not isinstance(concept, (int, np.integer))
            or not 0 <= concept < nb_concepts
        ):
            raise ValueError(
                f"labels: key {concept!r} is not a concept of these codes: keys are indices in [0, {nb_concepts})."
            )
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"labels[{concept}] is {label!r}: each label must be a non-empty string.")
        checked[int(concept)] = label.strip()
    return checked
