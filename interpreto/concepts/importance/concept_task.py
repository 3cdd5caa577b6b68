"""Concept space as the space an attribution method explains: concept codes at a split point, error term kept.

For one sample with hidden states `a` `(seq, hidden)` at the split point and codes `z = encode(a)`, the model is
run from `a' = decode(z') + s * e` where `e = a - decode(z)` is the reconstruction error of the input, `z'` the
edited codes and `s` the error term's weight (1 on the input): at the input `a' = a`, so the model's output is
unchanged, and the error is a player of its own. Every position is rebuilt, or only text positions
(`positions="text"`: `[CLS]`, `[SEP]`, BOS keep `a`; `"text_after_first"`: position 0 too). The baseline is `z' = 0, s = 0` (every concept removed, error removed): IG completeness reads
`sum over concepts + error term = f(x) - f(decode(0))`.

The attribution methods run unchanged on a `ConceptSample`: its "positions" are the players (one per
(concept, input element) pair, then the error term), and what a method sees as a position's hidden vector is
that player's code at each token `(seq,)`. A method that removes a player (perturbations) sets its row to the
baseline, zero; a gradient method differentiates with respect to the rows. `ConceptTask` maps rows back to
hidden states and scores them with the real task (`Task.scores(activations=...)`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interpreto.model.granularity import Elements
from interpreto.model.sample import Sample
from interpreto.model.task import Task

ERROR_NAME = "reconstruction error"


@dataclass
class ConceptSample(Sample):
    """A `Sample` whose elements are concept players (see the module docstring).

    Attributes:
        token_sample: the real sample (its tokens, targets and model inputs).
        players: `(n_players, seq)` the input's value of each player at each token (the error term: 1 at text
            positions).
        hidden: `(seq, hidden)` the input's hidden states at the split point.
        error: `(seq, hidden)` their reconstruction error `a - decode(encode(a))`.
        fixed_codes: `(seq, nb_concepts)` the codes of concepts that are not players (held at their input values).
        player_concepts: the concept index of each concept player, in order.
        assignment: `(n_concept_players, nb_concepts)` one-hot: which concept each player adds to.
        edited: `(seq,)` the token positions whose hidden states the players rebuild (the others keep theirs).
    """

    token_sample: Sample | None = None
    players: torch.Tensor | None = None
    hidden: torch.Tensor | None = None
    error: torch.Tensor | None = None
    fixed_codes: torch.Tensor | None = None
    player_concepts: list[int] | None = None
    assignment: torch.Tensor | None = None
    edited: torch.Tensor | None = None


class ConceptTask:
    """The task attribution methods see when explaining in concept space.

    Args:
        task: the real task (classification or generation), its `layer` set to the concept split point.
        explainer: a fitted concept explainer of that split point.
    """

    reuses_prefix = False
    defer_prediction = False

    def __init__(self, task: Task, explainer):
        if task.layer is None:
            raise ValueError("task.layer must be the concept explainer's split point.")
        self.task = task
        self.explainer = explainer
        self.layer = task.layer
        self.model = task.model
        self.tokenizer = task.tokenizer
        self.name = task.name
        self.default_score = task.default_score

    @property
    def device(self) -> torch.device:
        return self.task.device

    # ---- building the concept sample --------------------------------------------------------------------------

    def concept_sample(
        self,
        sample: Sample,
        groups: list[tuple[str, list[int], tuple[int, int] | None]],
        concepts: list[int],
        names: dict[int, str],
        positions: str = "all",
    ) -> ConceptSample:
        """The players of `sample`: each concept of `concepts` that is active (nonzero) at some edited position,
        within each group `(label, token positions, span)`, then the error term. Edited positions (`positions`):
        `"all"` tokens, `"text"` tokens only (`[CLS]`, `[SEP]`, BOS keep their hidden states), or `"text_after_first"`
        (also position 0, a causal LM's attention sink, kept)."""
        hidden = self.task.layer_activations(sample, sample.input_ids[None])[0]
        text = sample.maskable.to(hidden.device)
        if positions == "all":
            text = torch.ones_like(text)
        elif positions == "text_after_first":
            text = text.clone()
            text[0] = False
        with torch.no_grad():
            codes = self.explainer._encode(hidden.float().to(self.explainer.compute_device)).float()
            error = hidden.float() - self._decode(codes).to(hidden.device)
        codes = codes.to(hidden.device)
        active = [c for c in concepts if bool((codes[text, c] != 0).any())]
        fixed = codes.clone()
        fixed[:, active] = 0.0
        rows, labels, spans, concept_of, visible = [], [], [], [], []
        covered = torch.zeros_like(text)
        for _, positions, _ in groups:
            covered[positions] = True
        if (
            text & ~covered
        ).any():  # edited positions no element owns ([CLS], BOS, ...): a group of their own
            groups = [*groups, ("special tokens", torch.nonzero(text & ~covered)[:, 0].tolist(), None)]
        for label, positions, span in groups:
            in_group = torch.zeros_like(text)
            in_group[positions] = True
            in_group &= text
            for c in active:
                rows.append(torch.where(in_group, codes[:, c], torch.zeros_like(codes[:, c])))
                labels.append(names.get(c, f"concept {c}") + ("" if label is None else f" | {label}"))
                spans.append(span)
                concept_of.append(c)
                visible.append(self._visible(sample, positions))
        rows.append(text.float())
        labels.append(ERROR_NAME)
        spans.append(None)
        visible.append(torch.ones(sample.n_targets, dtype=torch.bool))
        n_players = len(rows)
        assignment = torch.zeros(n_players - 1, codes.shape[1], device=hidden.device)
        assignment[torch.arange(n_players - 1), torch.tensor(concept_of, dtype=torch.long)] = 1.0
        return ConceptSample(
            text=sample.text,
            input_ids=torch.full((n_players,), -1, dtype=torch.long),
            maskable=torch.ones(n_players, dtype=torch.bool),
            elements=Elements(labels, spans, [[p] for p in range(n_players)]),
            target_ids=sample.target_ids,
            target_names=sample.target_names,
            visible=torch.stack(visible, dim=1),
            scores=sample.scores,
            contrast_ids=sample.contrast_ids,
            contrast_names=sample.contrast_names,
            source=sample.source,
            token_sample=sample,
            players=torch.stack(rows),
            hidden=hidden,
            error=error,
            fixed_codes=fixed,
            player_concepts=concept_of,
            assignment=assignment,
            edited=text,
        )

    @staticmethod
    def _visible(sample: Sample, positions: list[int]) -> torch.Tensor:
        """Which targets a player at token `positions` can influence (generation: those scored after it)."""
        if sample.n_prompt_elements is None or len(positions) == sample.input_ids.numel():
            return torch.ones(sample.n_targets, dtype=torch.bool)
        for element, group in enumerate(sample.elements.token_groups):
            if group and group == positions:
                return sample.visible[:, element]
        return torch.ones(sample.n_targets, dtype=torch.bool)

    # ---- what the attribution methods call --------------------------------------------------------------------

    def layer_activations(self, sample: ConceptSample, input_ids: torch.Tensor) -> torch.Tensor:
        """Rows `(rows, n_players, seq)`: the input's players, those whose id was replaced set to zero."""
        present = (input_ids.to(sample.players.device) == sample.input_ids.to(sample.players.device))[
            ..., None
        ]
        return torch.where(present, sample.players[None], torch.zeros_like(sample.players)[None])

    def scores(
        self,
        sample: ConceptSample,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        activations: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores `(rows, n_targets)` of rows of players `(rows, n_players, seq)` (or of ids marking removed
        players), through `decode(z') + s * e` at the split point."""
        if inputs_embeds is not None:
            raise TypeError("concept attributions explain concept codes, not input embeddings.")
        if activations is None:
            activations = self.layer_activations(sample, input_ids)
        return self.task.scores(sample.token_sample, activations=self.hidden_states(sample, activations))

    def explained_scores(self, sample: ConceptSample, rows: torch.Tensor) -> torch.Tensor:
        return self.scores(sample, activations=rows)

    def hidden_states(self, sample: ConceptSample, rows: torch.Tensor) -> torch.Tensor:
        """Hidden states `(rows, seq, hidden)` for rows of players: `decode(z') + s * e` at text positions."""
        rows = rows.to(sample.hidden.device, torch.float32)
        concept_rows, weights = rows[:, :-1], rows[:, -1]
        codes = sample.fixed_codes[None] + torch.einsum("rpt,pc->rtc", concept_rows, sample.assignment)
        n_rows, seq, nb_concepts = codes.shape
        decoded = self._decode(codes.reshape(n_rows * seq, nb_concepts)).reshape(n_rows, seq, -1)
        edited = decoded.to(sample.hidden.device) + weights[..., None] * sample.error[None]
        text = sample.edited[None, :, None]
        return torch.where(text, edited, sample.hidden.float()[None]).to(sample.hidden.dtype)

    def input_state(self, sample: ConceptSample) -> tuple[None, torch.Tensor]:
        if sample.scores is not None:
            return None, sample.scores
        return None, self.scores(sample, input_ids=sample.input_ids[None])[0]

    def scores_after(self, sample, input_ids, start, state, input_scores) -> torch.Tensor:
        return self.scores(sample, input_ids=input_ids)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        raise TypeError(
            "concept attributions explain concept codes: there are no input embeddings to attribute."
        )

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """The explainer's decoder, differentiable (its public `decode` runs under inference mode)."""
        device = self.explainer.compute_device
        return self.explainer._decode(codes.to(device)).float().to(codes.device)
