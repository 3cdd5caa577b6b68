"""Infidelity (Yeh et al., 2019, "On the (In)fidelity and Sensitivity of Explanations"), with subset removal.

`INFD = E_S[(sum_{e in S} a_e - (f(x) - f(x without S)))^2]`: the perturbation removes a random subset S of
elements (replaces them by the baseline token), so the attribution predicts the score change by the sum of the
removed elements' attributions. This is Yeh et al.'s infidelity for the perturbation `I = x - baseline` on S,
the one that matches what element attributions (integrated gradients, input x gradient, occlusion, Shapley
values) claim. It reads any method's output; it is most telling for gradient methods, which are not fitted to
removals.
"""

from __future__ import annotations

from typing import Any

import torch

from interpreto.evaluation.base import AttributionMetric
from interpreto.model.running import check_integer
from interpreto.model.sample import Model, Tokenizer
from interpreto.model.scores import ScoreFunction


class Infidelity(AttributionMetric):
    """Infidelity of attributions under random removal of element subsets. **Lower is better.**

    Each of `n_perturbations` rows removes every element that can influence the target independently with
    probability `removal_probability`. With `normalize=True` (default) the attributions are first rescaled by the
    least-squares factor (as captum's `infidelity(normalize=True)`) and the result is divided by the mean squared
    score change, giving `1 - cos^2(predicted changes, real changes)` in [0, 1], comparable across methods whose
    attributions have different units (gradient norms, probabilities, logits); `normalize=False` gives Yeh et
    al.'s raw value in squared score units. A target whose score never changes gets NaN and is left out of means.

    Args:
        model: the explained classifier or causal LM (never modified).
        tokenizer: its fast tokenizer.
        n_perturbations: random subsets per target.
        removal_probability: the chance that a subset holds a given element.
        normalize: rescale as above.
        score: the score read; None (default) reads the one the explanations explain (`output.score`), since
            attributions predict changes of that score.
        **kwargs: `batch_size`, `device`, `progress`, `replace_token_id`, `max_batch_tokens`, `truncation`.

    Examples:
        >>> from interpreto import Occlusion
        >>> from interpreto.evaluation import Infidelity
        >>> from interpreto.zoo import additive_classifier
        >>> model, tokenizer = additive_classifier({"fine": 2.0, "dull": -1.0})
        >>> explanations = Occlusion(model, tokenizer, progress=False)(["a fine dull film"], targets=1)
        >>> metric = Infidelity(model, tokenizer, normalize=False, progress=False)
        >>> round(metric.evaluate(explanations).value, 6)   # exact on an additive model
        0.0
    """

    name = "Infidelity"
    higher_is_better = False

    def __init__(
        self,
        model: Model,
        tokenizer: Tokenizer,
        n_perturbations: int = 64,
        removal_probability: float = 0.5,
        normalize: bool = True,
        score: str | ScoreFunction | None = None,
        **kwargs: Any,
    ):
        super().__init__(model, tokenizer, score=score, **kwargs)
        self.n_perturbations = n_perturbations
        self.removal_probability = removal_probability
        self.normalize = normalize

    def _check_parameters(self, order: str) -> None:
        if order != "attribution":
            raise ValueError(
                f"order={order!r}: Infidelity reads the attributions themselves; use 'attribution'."
            )
        super()._check_parameters(order)
        check_integer("n_perturbations", self.n_perturbations)
        if not 0 < self.removal_probability < 1:
            raise ValueError(f"removal_probability must be in (0, 1), got {self.removal_probability!r}.")

    def masks(self, ranking: torch.Tensor, n_elements: int, generator: torch.Generator) -> torch.Tensor:
        masks = torch.zeros(self.n_perturbations, n_elements, dtype=torch.bool)
        draws = torch.rand(self.n_perturbations, len(ranking), generator=generator) < self.removal_probability
        masks[:, ranking] = draws
        return masks

    def reduce(self, input_score, row_scores, ranking, masks, attributions):
        predicted = masks.double() @ torch.nan_to_num(attributions.double(), nan=0.0)
        real = (input_score - row_scores).double()
        if not self.normalize:
            return float((predicted - real).square().mean()), None
        real_energy = real.square().sum()
        if real_energy == 0:
            return float("nan"), None
        predicted_energy = predicted.square().sum()
        if predicted_energy == 0:
            return 1.0, None
        return float(1 - (predicted @ real) ** 2 / (predicted_energy * real_energy)), None
