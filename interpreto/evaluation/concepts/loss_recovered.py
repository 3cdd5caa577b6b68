"""`LossRecovered`: how much of the model's performance survives when the split point's hidden states are
replaced by their reconstruction through the concepts."""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from interpreto.concepts.base import ConceptExplainer
from interpreto.evaluation.concepts.base import ConceptMetricResult
from interpreto.model._encoding import Inputs, texts_of
from interpreto.model.split_points import ModelWithSplitPoints

SETTINGS = ("clean", "spliced", "zero", "mean")
ABLATIONS = ("zero", "mean")
POSITIONS = ("text", "text_after_first")


class LossRecovered:
    """The fraction of the loss gap between an ablation and the clean model that the reconstruction closes.
        Higher is better (1: as good as the clean model; 0: as bad as the ablation).

        The model runs on the texts four ways: clean; *spliced*, with the split point's hidden state `h` of every
        text token replaced by `decode(encode(h))`; *zero-ablated* (those states set to 0) and *mean-ablated* (set to
        their mean over the evaluated text tokens). Special tokens (BOS, CLS, SEP, chat markers) and padding keep
        their clean states, and so does position 0 with `positions="text_after_first"` (a causal LM's attention sink,
    the first text token when the tokenizer adds no BOS: give it to an explainer fitted without it). With `CE` the
    loss of each run,

        `loss_recovered = (CE_ablated - CE_spliced) / (CE_ablated - CE_clean)`,

        reported for both ablations (`value` is the one `ablation=` names); `details` also holds each run's `CE`,
        the delta loss `CE_spliced - CE_clean`, the mean KL divergence `KL(p_clean || p_spliced)` (and of each
        ablation) and the KL score `(KL_ablated - KL_spliced) / KL_ablated`. The loss is, for a causal LM, the mean
        next-token cross-entropy over the targets that are text tokens; for a classifier (`(batch, classes)` logits),
        the cross-entropy of the clean model's predicted class. Runs in batches under `torch.inference_mode()`; the
        model is never modified (see `ModelWithSplitPoints.intervene`).

        Bricken et al. 2023, "Towards monosemanticity" (loss recovered with zero ablation),
        https://transformer-circuits.pub/2023/monosemantic-features; SAELens' `ce_loss_score` / `kl_div_score`.

        Args:
            model_with_split_points: the split model, whose `model` returns `.logits`.
            split_point: where to splice: a block index or module path; None takes the explainer's fitted split
                point, else the split model's only split point.
            ablation: `"zero"` or `"mean"`, the ablation `value` is measured against.
            positions: the replaced positions: `"text"` tokens, or `"text_after_first"` (position 0 keeps its clean
                state too, and is left out of the mean activation).
            batch_size: texts per forward pass; None uses the split model's `batch_size`.
            progress: show a progress bar over batches.

        Examples:
            >>> from interpreto import ModelWithSplitPoints
            >>> from interpreto.concepts import NeuronsAsConcepts
            >>> from interpreto.evaluation import LossRecovered
            >>> from interpreto.zoo import tiny_llama
            >>> model, tokenizer = tiny_llama(seed=0)
            >>> splitter = ModelWithSplitPoints(model, split_points=0, tokenizer=tokenizer, progress=False)
            >>> texts = ["the dog runs", "a cat sleeps"]
            >>> neurons = NeuronsAsConcepts(splitter).fit(splitter.get_activations(texts))
            >>> LossRecovered(splitter).compute(neurons, texts).value  # a perfect reconstruction
            1.0
    """

    name = "LossRecovered"
    higher_is_better = True

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints,
        split_point: int | str | None = None,
        ablation: str = "zero",
        batch_size: int | None = None,
        progress: bool = False,
        positions: str = "text",
    ):
        if positions not in POSITIONS:
            raise ValueError(f"positions={positions!r} is unknown: use one of {list(POSITIONS)}.")
        self.model_with_split_points = model_with_split_points
        self.split_point = split_point
        self.ablation = ablation
        self.positions = positions
        self.batch_size = batch_size
        self.progress = progress

    def compute(
        self, explainer: ConceptExplainer, inputs: Inputs, mean_activation: torch.Tensor | None = None
    ) -> ConceptMetricResult:
        """Loss recovered by `explainer`'s reconstruction on `inputs`.

        Args:
            explainer: a fitted concept explainer of the split point's activations.
            inputs: a text or a list of texts.
            mean_activation: `(hidden,)` the mean-ablation state; None uses `mean_activation(inputs)`.

        Returns:
            A `ConceptMetricResult` whose `per_row` is each text's delta loss `CE_spliced - CE_clean`.
        """
        if self.ablation not in ABLATIONS:
            raise ValueError(f"ablation={self.ablation!r} is unknown: use one of {list(ABLATIONS)}.")
        texts = texts_of(inputs)
        point = self._split_point(explainer)
        mean = self.mean_activation(texts, point) if mean_activation is None else mean_activation
        totals = {setting: 0.0 for setting in SETTINGS}
        kl = {setting: 0.0 for setting in SETTINGS[1:]}
        n_targets, per_text, task = 0, [], ""
        with torch.inference_mode():
            for start in tqdm(self._starts(texts), desc="loss recovered", disable=not self.progress):
                chunk = texts[start : start + self._batch_size()]
                text_mask, input_ids = self._tokenized(chunk)
                clean, losses = None, {}
                for setting, edit in self._edits(text_mask, explainer, mean).items():
                    task, log_probs = self._log_probs(chunk, point, edit)
                    if clean is None:  # the clean run comes first: it fixes the targets
                        labels, targets = _targets(task, log_probs, text_mask, input_ids)
                        clean = log_probs
                    losses[setting] = -log_probs.gather(-1, labels[..., None]).squeeze(-1)
                    totals[setting] += float(losses[setting][targets].double().sum())
                    if setting != "clean":
                        divergence = (clean.exp() * (clean - log_probs)).sum(dim=-1)
                        kl[setting] += float(divergence[targets].double().sum())
                    del log_probs
                n_targets += int(targets.sum())
                delta = ((losses["spliced"] - losses["clean"]).double() * targets).sum(dim=-1)
                per_text.append((delta / targets.sum(dim=-1).clamp(min=1)).cpu())
        if n_targets == 0:
            raise ValueError("inputs: no text token to score (each text needs a text token after its first).")
        ce = {setting: total / n_targets for setting, total in totals.items()}
        kl = {setting: total / n_targets for setting, total in kl.items()}
        details = {f"ce_{setting}": value for setting, value in ce.items()}
        for name in ABLATIONS:
            details[f"loss_recovered_{name}"] = _ratio(ce[name] - ce["spliced"], ce[name] - ce["clean"])
            details[f"kl_{name}"] = kl[name]
            details[f"kl_score_{name}"] = _ratio(kl[name] - kl["spliced"], kl[name])
        details.update(
            delta_loss=ce["spliced"] - ce["clean"],
            kl_spliced=kl["spliced"],
            ablation=self.ablation,
            task=task,
            n_targets=n_targets,
            split_point=point,
        )
        return ConceptMetricResult(
            self.name,
            details[f"loss_recovered_{self.ablation}"],
            self.higher_is_better,
            per_row=torch.cat(per_text),
            details=details,
        )

    def mean_activation(self, inputs: Inputs, split_point: int | str | None = None) -> torch.Tensor:
        """`(hidden,)` float32: the mean hidden state at the split point over the text tokens of `inputs`."""
        texts = texts_of(inputs)
        point = self._split_point(None) if split_point is None else split_point
        total, count, captured = None, 0, {}

        def keep(hidden: torch.Tensor) -> torch.Tensor:
            captured["h"] = hidden
            return hidden

        with torch.inference_mode():
            for start in self._starts(texts):
                chunk = texts[start : start + self._batch_size()]
                text_mask, _ = self._tokenized(chunk)
                self.model_with_split_points.intervene(chunk, point, keep)
                rows = captured["h"][text_mask.to(captured["h"].device)].double()
                total = rows.sum(dim=0) + (0 if total is None else total)
                count += rows.shape[0]
        if count == 0:
            raise ValueError("inputs: no text token to average (only special tokens).")
        return (total / count).float().cpu()

    # ---- internals ------------------------------------------------------------------------------------------

    def _edits(self, text_mask: torch.Tensor, explainer: ConceptExplainer, mean: torch.Tensor) -> dict:
        """The four edits of the split point's hidden states, clean first; only text tokens are replaced."""

        def replaced(values):
            def edit(hidden: torch.Tensor) -> torch.Tensor:
                mask = text_mask.to(hidden.device)
                edited = hidden.clone()
                edited[mask] = values(hidden[mask]).to(hidden.device, hidden.dtype)
                return edited

            return edit

        return {
            "clean": lambda hidden: hidden,
            "spliced": replaced(lambda rows: explainer.decode(explainer.encode(rows))),
            "zero": replaced(torch.zeros_like),
            "mean": replaced(lambda rows: mean.to(rows.device, rows.dtype).expand_as(rows)),
        }

    def _log_probs(self, chunk: list[str], point: int | str, edit) -> tuple[str, torch.Tensor]:
        """The task and float32 log-probabilities of one edited run: `(batch, seq - 1, vocab)` next-token ones for
        a causal LM (position `t` predicts token `t + 1`), `(batch, 1, classes)` for a classifier."""
        logits = getattr(self.model_with_split_points.intervene(chunk, point, edit), "logits", None)
        if logits is None:
            raise TypeError(
                "LossRecovered needs a model that returns .logits (a causal LM or a classifier, e.g. loaded "
                "with AutoModelForCausalLM / AutoModelForSequenceClassification)."
            )
        if logits.dim() == 3:
            return "causal_lm", logits[:, :-1].float().log_softmax(dim=-1)
        if logits.dim() == 2:
            return "classification", logits.float().log_softmax(dim=-1)[:, None]
        raise ValueError(
            f"logits of shape {tuple(logits.shape)}: expected (batch, seq, vocab) or (batch, classes)."
        )

    def _tokenized(self, chunk: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """`(batch, seq)` True at the replaced positions (text tokens, not special, not padding; not position 0
        with `"text_after_first"`), and the input ids, right-padded as the model sees them."""
        samples, batch = self.model_with_split_points.tokenize(chunk)
        width = batch["input_ids"].shape[1]
        rows = [sample.is_text + [False] * (width - len(sample.is_text)) for sample in samples]
        mask = torch.tensor(rows, dtype=torch.bool)
        if self.positions == "text_after_first":
            mask[:, 0] = False
        return mask, batch["input_ids"].cpu()

    def _split_point(self, explainer: ConceptExplainer | None) -> int | str:
        if self.split_point is not None:
            return self.split_point
        fitted = getattr(explainer, "fitted_split_point", None)
        if fitted is not None:
            return fitted
        points = self.model_with_split_points.split_points
        if len(points) != 1:
            raise ValueError(f"split_point: the model is split at {points}: pass split_point= to choose.")
        return points[0]

    def _batch_size(self) -> int:
        return self.batch_size or self.model_with_split_points.batch_size

    def _starts(self, texts: list[str]) -> range:
        size = self._batch_size()
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {size!r}.")
        return range(0, len(texts), size)


def _targets(
    task: str, clean: torch.Tensor, text_mask: torch.Tensor, input_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(labels, targets)` from the clean log-probabilities: for a causal LM the next tokens, targets where that
    token is text; for a classifier the clean model's predicted class, one target per text."""
    if task == "classification":
        labels = clean.argmax(dim=-1)
        return labels, torch.ones_like(labels, dtype=torch.bool)
    return input_ids[:, 1:].to(clean.device), text_mask[:, 1:].to(clean.device)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator + 0.0 if denominator != 0 else math.nan  # + 0.0: no -0.0
