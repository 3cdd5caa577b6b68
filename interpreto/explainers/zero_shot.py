"""Zero-shot classification with an NLI model: which words of a text entail each candidate label."""

from __future__ import annotations

from interpreto.explainers.sequence import (
    SequenceClassificationExplainer,
    WordAttributions,
    class_logits,
    pairs,
)
from interpreto.model.classification import TextPair
from interpreto.model.sample import as_list, check_text


class ZeroShotClassificationExplainer(SequenceClassificationExplainer):
    """Explains an NLI model used as a zero-shot classifier, as Hugging Face's zero-shot pipeline uses it.

    Each candidate label becomes a hypothesis (`hypothesis_template.format(label)`); the model reads the pair
    (text, hypothesis) and the entailment logit is explained (the class whose `config.label2id` name starts
    with "entail", case-insensitively). The hypothesis is held fixed like special tokens: never perturbed,
    kept as it is in baselines, and not among the elements, so each label gets attributions over the text's
    elements only. The predicted label has the highest softmax over labels of the entailment logits (the
    pipeline with `multi_label=False`).

    Args:
        model: an NLI `...ForSequenceClassification` model with an entailment label.
        tokenizer: its fast tokenizer.
        method: an attribution method class (`IntegratedGradients` by default).
        **method_kwargs: passed to the method (`n_perturbations`, `granularity`, `progress`, `score`...).

    Attributes (set by each call):
        predicted_label: the most probable candidate label.
        pred_probs: label -> probability (softmax over labels of the entailment logits).
        attributions: one `AttributionOutput` per label, explaining the pair (text, hypothesis).

    Examples:
        >>> from interpreto.explainers import ZeroShotClassificationExplainer
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier(num_labels=3)
        >>> model.config.label2id = {"contradiction": 0, "neutral": 1, "entailment": 2}
        >>> model.config.id2label = {0: "contradiction", 1: "neutral", 2: "entailment"}
        >>> explainer = ZeroShotClassificationExplainer(model, tokenizer, n_perturbations=8, progress=False)
        >>> result = explainer("the cat sat", ["cats", "dogs"])
        >>> [word for word, _ in result["cats"]], explainer.predicted_label in ("cats", "dogs")
        (['the', 'cat', 'sat'], True)
    """

    def __call__(  # type: ignore[override]
        self, text: str, labels: str | list[str], hypothesis_template: str = "This example is {}."
    ) -> dict[str, WordAttributions]:
        """Attributions of `text`'s elements to the entailment of each label's hypothesis.

        Args:
            text: the text to classify (the premise).
            labels: a candidate label or a list of them.
            hypothesis_template: turns a label into a hypothesis; must hold `{}`.

        Returns:
            `{label: [(element, score), ...]}` over the elements of `text`.
        """
        check_text(text, "text")
        labels = [check_text(label, "labels") for label in as_list(labels, "labels")]
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels has duplicates: {labels}; give each candidate label once.")
        if not isinstance(hypothesis_template, str) or "{}" not in hypothesis_template:
            raise ValueError(
                f"hypothesis_template={hypothesis_template!r} must be a string holding {{}}, where each label "
                f"goes, e.g. 'This example is {{}}.'."
            )
        entailment = self.entailment_id
        items = [TextPair(text, hypothesis_template.format(label), explain_second=False) for label in labels]
        truncation = self.method_kwargs.get("truncation", False)
        logits = class_logits(self.model, self.tokenizer, items, truncation)[:, entailment]
        probabilities = logits.softmax(-1)
        self.pred_probs = {label: float(p) for label, p in zip(labels, probabilities, strict=True)}
        self.predicted_label = labels[int(probabilities.argmax())]
        self.predicted_class_index = entailment
        self.predicted_class_name = self.labels[entailment]
        self.attributions = self.attribution_method()(items, entailment)
        return {label: pairs(output) for label, output in zip(labels, self.attributions, strict=True)}

    @property
    def entailment_id(self) -> int:
        """The class index of entailment, from `config.label2id` (a name starting with "entail", any case)."""
        label2id = getattr(self.model.config, "label2id", None) or {}
        for name, index in label2id.items():
            if str(name).lower().startswith("entail"):
                return int(index)
        raise ValueError(
            f"model.config.label2id has no entailment label ({label2id}): zero-shot classification needs an NLI "
            f"model whose label2id names the entailment class (e.g. 'entailment'); set config.label2id and "
            f"config.id2label on a copy of the model if they are missing."
        )
