"""Explain every label of a multi-label classifier, each as its own sigmoid probability."""

from __future__ import annotations

from interpreto.explainers.sequence import (
    SequenceClassificationExplainer,
    WordAttributions,
    class_logits,
    pairs,
)


class MultiLabelClassificationExplainer(SequenceClassificationExplainer):
    """Explains each label of a multi-label classifier (labels are independent: sigmoid, not softmax).

    One call of the attribution method explains all labels at once; the explained score is each label's
    sigmoid probability (`score="sigmoid_probabilities"`) unless `method_kwargs` names another `score`.

    Args:
        model: a `...ForSequenceClassification` model (e.g. `problem_type="multi_label_classification"`).
        tokenizer: its fast tokenizer.
        method: an attribution method class (`IntegratedGradients` by default).
        **method_kwargs: passed to the method (`n_perturbations`, `granularity`, `progress`, ...).

    Attributes (set by each call):
        pred_probs: label -> sigmoid probability.
        predicted_labels: the labels whose probability is above 0.5.
        attributions: the method's `AttributionOutput`, one row per label.

    Examples:
        >>> from interpreto.explainers import MultiLabelClassificationExplainer
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier(num_labels=3)
        >>> explainer = MultiLabelClassificationExplainer(model, tokenizer, n_perturbations=8, progress=False)
        >>> result = explainer("a fine film")
        >>> sorted(result), [word for word, _ in result["LABEL_0"]]
        (['LABEL_0', 'LABEL_1', 'LABEL_2'], ['a', 'fine', 'film'])
    """

    def __call__(self, text: str) -> dict[str, WordAttributions]:  # type: ignore[override]
        """Attributions of `text`'s elements for every label: `{label: [(element, score), ...]}`."""
        labels = self.labels
        logits = class_logits(
            self.model, self.tokenizer, [text], self.method_kwargs.get("truncation", False)
        )[0]
        probabilities = logits.sigmoid()
        self.pred_probs = {labels[i]: float(p) for i, p in enumerate(probabilities)}
        self.predicted_labels = [label for label, p in self.pred_probs.items() if p > 0.5]
        score = None if "score" in self.method_kwargs else "sigmoid_probabilities"
        self.attributions = self.attribution_method(score)(text, list(labels))[0]
        return {labels[index]: pairs(self.attributions, row) for row, index in enumerate(labels)}
