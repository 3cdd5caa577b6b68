"""Concept activation vectors and TCAV: does a concept's direction at a split point push a model's output up?

Kim et al. (2018): a CAV `v` is the unit normal of a linear probe separating a concept's activations from
random counter-examples' at a split point. For an input `x`, the directional derivative of an output `f` along
`v` is `S(x) = grad_a f(x) . v`; the TCAV score of a set of inputs is the fraction with `S > 0`. Whether that
fraction means anything is tested against CAVs trained on random sets: a two-sided t-test of the concept's
scores (several CAVs, each against a different random set) against the random CAVs' scores. Here each concept
CAV gets its own disjoint slice of the concept rows by default, so that the runs are independent as the t-test
assumes (Kim et al. reuse every concept row in every run, which makes the p-values optimistic; see
`TCAV.score`). captum's TCAV leaves this test to a tutorial.

Reference: B. Kim, M. Wattenberg, J. Gilmer, C. Cai, J. Wexler, F. Viegas and R. Sayres, "Interpretability
Beyond Feature Attribution: Quantitative Testing with Concept Activation Vectors (TCAV)", ICML 2018.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from interpreto.concepts.data import ActivationData, ActivationSource
from interpreto.concepts.probes.explainer import ProbeExplainer
from interpreto.concepts.probes.linear import LogisticRegressionProbe, Probe, make_probe
from interpreto.model._encoding import Inputs, texts_of
from interpreto.model.activations import Activations
from interpreto.model.split_points import ModelWithSplitPoints

Target = int | Callable[[Any, torch.Tensor], torch.Tensor]
POSITIONS = ("sum", "first", "last")


class CAV:
    """A concept activation vector: the unit normal of a linear probe, concept (label 1) vs random (label 0).

    `direction = W / ||W||` of the probe's single direction (`w_concept - w_random` for `CentroidProbe`), in raw
    activation space, pointing towards the concept.

    Args:
        probe: the probe (see `ProbeExplainer`); `LogisticRegressionProbe()` by default.
        test_fraction: the fraction of each set held out to measure `accuracy`; 0 measures it on the
            training rows.

    Attributes:
        direction: `(hidden,)` unit vector, after `fit`.
        accuracy: the probe's accuracy at telling concept from random rows (held out when `test_fraction > 0`).

    Examples:
        >>> import torch
        >>> from interpreto.concepts import CAV
        >>> g = torch.Generator().manual_seed(0)
        >>> concept = torch.randn(30, 3, generator=g) + torch.tensor([4.0, 0, 0])
        >>> cav = CAV(test_fraction=0.3).fit(concept, torch.randn(30, 3, generator=g))
        >>> bool(cav.direction[0] > 0.7), round(float(cav.direction.norm()), 4), cav.accuracy
        (True, 1.0, 1.0)
    """

    def __init__(self, probe: Probe | str | dict | None = None, test_fraction: float = 0.0):
        self.probe = probe
        self.test_fraction = test_fraction
        self.direction: torch.Tensor | None = None
        self.accuracy: float | None = None

    def fit(
        self, concept_activations: ActivationSource, random_activations: ActivationSource, seed: int = 0
    ) -> CAV:
        """Fits the probe on concept rows (label 1) and random rows (label 0); `seed` draws the held-out rows
        and reaches the solver."""
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in [0, 1), got {self.test_fraction!r}.")
        concept, random = _rows(concept_activations), _rows(random_activations)
        if concept.shape[1] != random.shape[1]:
            raise ValueError(
                f"concept and random activations have {concept.shape[1]} and {random.shape[1]} features: "
                f"pass activations of the same split point."
            )
        generator = torch.Generator().manual_seed(seed)
        (train_c, test_c), (train_r, test_r) = (
            _split(x, self.test_fraction, generator) for x in (concept, random)
        )
        probe = make_probe(self.probe if self.probe is not None else LogisticRegressionProbe())
        rows, labels = _labelled(train_c, train_r)
        explainer = ProbeExplainer(None, probe).fit(
            rows, labels.float() if probe.task == "regression" else labels
        )
        weight = explainer.weight
        direction = weight[1] - weight[0] if weight.shape[0] == 2 else weight[0]
        self.direction = (direction / direction.norm()).cpu()
        rows, labels = _labelled(test_c, test_r) if len(test_c) and len(test_r) else (rows, labels)
        if probe.task == "regression":
            self.accuracy = float(((explainer.predict(rows) > 0.5).long() == labels).float().mean())
        else:
            self.accuracy = explainer.score(rows, labels)
        return self


@dataclass
class TCAVResult:
    """TCAV scores of one concept, and their significance against random CAVs.

    Attributes:
        score: mean sign count over the concept CAVs: the fraction of inputs with `S > 0`.
        magnitude: mean magnitude score `sum(max(S, 0)) / sum(|S|)` (captum's `"magnitude"`).
        p_value: two-sided Welch t-test of the concept CAVs' sign counts against the random CAVs'.
        magnitude_p_value: the same test on magnitude scores.
        significant: `p_value < alpha`.
        alpha: the test's level.
        concept_scores, concept_magnitudes: per concept CAV (one per random counter-set).
        random_scores, random_magnitudes: per random CAV.
        cav_accuracies, random_cav_accuracies: the CAV probes' accuracies (held out with `test_fraction`).
    """

    score: float
    magnitude: float
    p_value: float
    magnitude_p_value: float
    significant: bool
    alpha: float
    concept_scores: list[float] = field(default_factory=list)
    concept_magnitudes: list[float] = field(default_factory=list)
    random_scores: list[float] = field(default_factory=list)
    random_magnitudes: list[float] = field(default_factory=list)
    cav_accuracies: list[float] = field(default_factory=list)
    random_cav_accuracies: list[float] = field(default_factory=list)


class TCAV:
    """Testing with CAVs (Kim et al., 2018): directional derivatives of an output along concept directions.

    `S(x) = sum_t grad_{a_t} f(x) . v` for a direction `v` at the split point, `a_t` the split point's
    activation at token `t` of input `x` (every non-padding token, special ones included; `positions="first"`
    keeps only the first token, e.g. `[CLS]`, `"last"` only the last one). TCAV score = `mean(S > 0)` over the
    inputs (sign count); magnitude = `sum(max(S, 0)) / sum(|S|)`. The user's model is left as it was: no
    parameter gradient, hook, mode or `requires_grad` change (gradients are taken with `torch.autograd.grad`
    with respect to the activations only).

    Args:
        model_with_split_points: the split model; `split_point` must be one of its split points.
        split_point: where the CAVs live; None takes its only split point.
        target: the output `f`: an int is a class logit `logits[:, target]` for a classifier (2-D logits) or,
            for a causal LM (3-D logits), the log-probability of token id `target` after each input's last token;
            or a function `(model_output, attention_mask) -> (batch,)` tensor.
        positions: `"sum"` (every token), `"first"` or `"last"`.
        batch_size: inputs per forward pass; None uses the split model's.

    Examples:
        >>> import torch
        >>> from interpreto import ModelWithSplitPoints
        >>> from interpreto.concepts import TCAV
        >>> from interpreto.zoo import tiny_bert_classifier
        >>> model, tokenizer = tiny_bert_classifier()
        >>> splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
        >>> tcav = TCAV(splitter, target=1)
        >>> grads = tcav.gradients(["a good movie", "bad"])
        >>> grads.shape, tcav.sign_count(grads @ grads[0]) >= 0.5
        (torch.Size([2, 32]), True)
    """

    def __init__(
        self,
        model_with_split_points: ModelWithSplitPoints,
        split_point: int | str | None = None,
        target: Target = 0,
        positions: str = "sum",
        batch_size: int | None = None,
    ):
        self.model_with_split_points = model_with_split_points
        self.split_point = split_point
        self.target = target
        self.positions = positions
        self.batch_size = batch_size

    # ---- derivatives ------------------------------------------------------------------------------------------

    def gradients(self, inputs: Inputs) -> torch.Tensor:
        """`(n_inputs, hidden)`: `sum_t grad_{a_t} f(x)` per input (the position picked by `positions`), so that
        `gradients(inputs) @ v` gives the directional derivatives along any `v`."""
        if self.positions not in POSITIONS:
            raise ValueError(f"positions={self.positions!r} is unknown: use one of {list(POSITIONS)}.")
        splitter, name = self.model_with_split_points, self._split_point()
        texts = texts_of(inputs)
        size = self.batch_size or splitter.batch_size
        parts = [
            self._batch_gradients(splitter, name, texts[k : k + size]) for k in range(0, len(texts), size)
        ]
        return torch.cat(parts)

    def directional_derivatives(self, inputs: Inputs, direction: torch.Tensor | CAV) -> torch.Tensor:
        """`S(x) = grad_a f(x) . v` `(n_inputs,)` along `direction` (a CAV's, or a `(hidden,)` tensor as given)."""
        gradients, vector = self.gradients(inputs), _direction(direction)
        _check_dim(vector.shape[-1], gradients.shape[1])
        return gradients @ vector

    @staticmethod
    def sign_count(derivatives: torch.Tensor) -> float:
        """The fraction of directional derivatives above 0."""
        return float((derivatives > 0).float().mean())

    @staticmethod
    def magnitude(derivatives: torch.Tensor) -> float:
        """`sum(max(S, 0)) / sum(|S|)`; 0 when every derivative is 0."""
        total = float(derivatives.abs().sum())
        return float(derivatives.clamp_min(0).sum()) / total if total > 0 else 0.0

    # ---- scores and significance ------------------------------------------------------------------------------

    def score(
        self,
        inputs: Inputs,
        concept_activations: ActivationSource,
        random_activations: ActivationSource | list[ActivationSource],
        n_runs: int = 10,
        probe: Probe | str | dict | None = None,
        alpha: float = 0.05,
        split_concept: bool = True,
        test_fraction: float = 0.0,
        seed: int = 0,
    ) -> TCAVResult:
        """The concept's TCAV scores on `inputs` and their significance against random CAVs.

        Run `r` fits a concept CAV on concept rows `C_r` against a random counter-set `N_r`, and a random CAV
        on another random set `P_r` against `N_r`; the p-value is a two-sided Welch t-test of the concept
        CAVs' sign counts against the random CAVs'. With `split_concept=True` (default) `C_r` is the `r`-th of
        `n_runs` disjoint slices of the concept rows, so the runs are independent, as the t-test assumes; with
        `False` every run uses all concept rows (Kim et al.'s design), which makes the concept CAVs correlated
        and the p-value optimistic (measured on `tiny_bert_classifier` with random "concepts": 5 of 30
        significant at 0.05 with all rows, 1 of 30 with disjoint slices). `random_activations` is one pool of
        rows, from which each run draws `N_r` and `P_r` (disjoint, `m = min(|C_r|, n_random // 2)` rows each,
        `C_r` subsampled to `m`), or a list of random sets (`N_r` is set `r`, `P_r` set `r + 1`; `n_runs` is
        their number). The gradients are computed once and shared by every CAV.

        Args:
            inputs: the texts whose outputs are tested.
            concept_activations: the concept examples' activations at the split point.
            random_activations: random examples' activations: one pool, or a list of sets.
            n_runs: the number of concept CAVs (and random CAVs) with a pool.
            probe: the CAVs' probe (see `CAV`).
            alpha: the significance level.
            split_concept: give each run its own disjoint slice of the concept rows.
            test_fraction: the fraction of each CAV's rows held out to measure its accuracy (see `CAV`); 0
                reports training accuracy.
            seed: draws the sets and reaches the probes' solvers.
        """
        concept = _rows(concept_activations)
        gradients = self.gradients(inputs)
        _check_dim(concept.shape[1], gradients.shape[1])
        generator = torch.Generator().manual_seed(seed)
        runs = _runs(concept, random_activations, n_runs, split_concept, generator)
        results: dict[str, list[float]] = {key: [] for key in ("cs", "cm", "ca", "rs", "rm", "ra")}
        for run, (positive, negative, random_positive) in enumerate(runs):
            for prefix, rows in (("c", positive), ("r", random_positive)):
                cav = CAV(probe, test_fraction).fit(rows, negative, seed=seed + run)
                derivatives = gradients @ cav.direction.to(gradients.dtype)
                results[prefix + "s"].append(self.sign_count(derivatives))
                results[prefix + "m"].append(self.magnitude(derivatives))
                results[prefix + "a"].append(cav.accuracy)
        p_value = _t_test(results["cs"], results["rs"])
        return TCAVResult(
            score=sum(results["cs"]) / len(results["cs"]),
            magnitude=sum(results["cm"]) / len(results["cm"]),
            p_value=p_value,
            magnitude_p_value=_t_test(results["cm"], results["rm"]),
            significant=p_value < alpha,
            alpha=alpha,
            concept_scores=results["cs"],
            concept_magnitudes=results["cm"],
            random_scores=results["rs"],
            random_magnitudes=results["rm"],
            cav_accuracies=results["ca"],
            random_cav_accuracies=results["ra"],
        )

    # ---- internals --------------------------------------------------------------------------------------------

    def _split_point(self) -> str:
        splitter = self.model_with_split_points
        if self.split_point is None:
            if len(splitter.split_points) != 1:
                raise ValueError(
                    f"split_point: the model is split at {splitter.split_points}: pass split_point= to choose."
                )
            return splitter.split_points[0]
        from interpreto.model._architectures import resolve_split_points

        (point,) = resolve_split_points(splitter.model, self.split_point)
        if point.name not in splitter.split_points:
            raise ValueError(
                f"split_point={self.split_point!r} ({point.name}) is not among the model's split points "
                f"{splitter.split_points}: split the model there."
            )
        return point.name

    def _batch_gradients(self, splitter: ModelWithSplitPoints, name: str, texts: list[str]) -> torch.Tensor:
        acts = splitter.get_activations(texts, granularity="all_tokens", progress=False)[name]
        inputs = acts.input_indices
        lengths = torch.bincount(inputs, minlength=len(texts))
        with torch.inference_mode(False), torch.enable_grad():
            rows = acts.activations.clone().requires_grad_(True)
            output = splitter.forward_from(name, Activations(rows, acts.index, name, "all_tokens"), texts)
            values = self._target_values(output, lengths)
            (grads,) = torch.autograd.grad(values.sum(), rows)
        grads = grads.detach().float().cpu()
        if self.positions == "sum":
            return torch.zeros(len(texts), grads.shape[1]).index_add_(0, inputs, grads)
        starts = torch.cumsum(lengths, 0) - lengths
        picks = starts if self.positions == "first" else starts + lengths - 1
        return grads[picks]

    def _target_values(self, output: Any, lengths: torch.Tensor) -> torch.Tensor:
        """`f(x)` per input `(batch,)`."""
        logits = (
            output.logits if hasattr(output, "logits") else output[0] if isinstance(output, tuple) else output
        )
        if callable(self.target):
            mask = torch.arange(int(lengths.max()))[None] < lengths[:, None]
            values = self.target(output, mask.long().to(logits.device))
        elif logits.dim() == 2:
            values = logits[:, self.target]
        elif logits.dim() == 3:
            last = logits[torch.arange(len(lengths)), (lengths - 1).to(logits.device)]
            values = last.float().log_softmax(dim=-1)[:, self.target]
        else:
            raise ValueError(f"target: the model's logits have shape {tuple(logits.shape)}; pass a function.")
        if values.shape != (len(lengths),):
            raise ValueError(
                f"target: f(x) must have one value per input, shape ({len(lengths)},), got {tuple(values.shape)}."
            )
        return values


def _rows(activations: ActivationSource) -> torch.Tensor:
    return ActivationData(activations).tensor(method="CAV")


def _direction(direction: torch.Tensor | CAV) -> torch.Tensor:
    vector = direction.direction if isinstance(direction, CAV) else direction
    if vector is None:
        raise ValueError(
            "direction: the CAV is not fitted: call .fit(concept_activations, random_activations)."
        )
    return vector.detach().float().cpu()


def _check_dim(dim: int, hidden: int) -> None:
    if dim != hidden:
        raise ValueError(
            f"the concept activations / direction have {dim} features but the split point's hidden size is "
            f"{hidden}: pass activations of this split point."
        )


def _split(
    rows: torch.Tensor, fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    n_test = int(round(fraction * len(rows)))
    if fraction > 0 and not 1 <= n_test < len(rows):
        raise ValueError(f"test_fraction={fraction} leaves no training or no test rows of {len(rows)}.")
    order = torch.randperm(len(rows), generator=generator)
    return rows[order[n_test:]], rows[order[:n_test]]


def _labelled(concept: torch.Tensor, random: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.cat(
        [torch.ones(len(concept), dtype=torch.long), torch.zeros(len(random), dtype=torch.long)]
    )
    return torch.cat([concept, random]), labels


def _runs(
    concept: torch.Tensor, random: Any, n_runs: int, split_concept: bool, generator: torch.Generator
) -> list[tuple]:
    """`(concept rows, negative set, random positive set)` per run."""
    sets = [_rows(r) for r in random] if isinstance(random, (list, tuple)) else None
    if sets is not None:
        if len(sets) < 2:
            raise ValueError("random_activations: pass at least two random sets (or one pool of rows).")
        n_runs = len(sets)
    if n_runs < 2:
        raise ValueError(f"n_runs={n_runs}: the t-test needs at least 2 runs.")
    chunk = len(concept) // n_runs if split_concept else len(concept)
    if chunk < 2:
        raise ValueError(
            f"concept_activations: {len(concept)} rows cannot be split into {n_runs} runs of at least 2: pass "
            f"more concept rows, a smaller n_runs, or split_concept=False."
        )
    order = torch.randperm(len(concept), generator=generator)
    chunks = [concept[order[r * chunk : (r + 1) * chunk]] for r in range(n_runs)]
    if sets is not None:
        return [(chunks[r], sets[r], sets[(r + 1) % n_runs]) for r in range(n_runs)]
    pool = _rows(random)
    size = min(chunk, len(pool) // 2)
    if size < 2:
        raise ValueError(f"random_activations: {len(pool)} random rows; pass at least 4.")
    runs = []
    for r in range(n_runs):
        picks = torch.randperm(len(pool), generator=generator)
        positive = chunks[r][torch.randperm(chunk, generator=generator)[:size]]
        runs.append((positive, pool[picks[:size]], pool[picks[size : 2 * size]]))
    return runs


def _t_test(concept: list[float], random: list[float]) -> float:
    """Two-sided Welch t-test p-value; with no spread at all, 0 when the means differ and 1 when they do not."""
    from scipy.stats import ttest_ind

    with warnings.catch_warnings():  # a constant sample (every score 1.0) warns of precision loss
        warnings.simplefilter("ignore", RuntimeWarning)
        p_value = float(ttest_ind(concept, random, equal_var=False).pvalue)
    if p_value != p_value:  # NaN: both samples constant
        return 0.0 if sum(concept) / len(concept) != sum(random) / len(random) else 1.0
    return p_value
