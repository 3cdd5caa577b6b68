"""Concept importance: concept attributions (error term kept), their global ranking, input-to-concept.

Values are checked against closed forms: IG completeness, Occlusion = one-by-one model differences computed by
hand through a forward hook, KernelSHAP efficiency, a planted classifier whose decision rides on one direction.
"""

import pytest
import torch

from interpreto import ModelWithSplitPoints
from interpreto.attribution import KernelShap, Occlusion
from interpreto.concepts import ConceptExplainer, PCAConcepts
from interpreto.concepts.importance import concept_attributions
from interpreto.concepts.importance.global_importance import global_importance
from interpreto.concepts.importance.input_to_concept import input_to_concept
from interpreto.zoo import tiny_bert_classifier, tiny_llama
from tests.tolerance import assert_close_to_scale

TEXTS = ["a good movie", "a bad movie", "great fun", "dull and long", "what a film", "nice one", "so so"]


class BasisConcepts(ConceptExplainer):
    """Concepts = coordinates in an orthonormal basis (exact reconstruction); `silent` concepts coded 0."""

    def __init__(self, model_with_split_points, basis: torch.Tensor, silent: tuple = ()):
        super().__init__(model_with_split_points, basis.shape[0])
        self.basis = basis
        self.silent = silent

    def _fit(self, data, **kwargs):
        pass

    def _encode(self, rows):
        codes = rows @ self.basis.T
        codes[:, list(self.silent)] = 0.0
        return codes

    def _decode(self, codes):
        return codes @ self.basis

    def _dictionary(self):
        return self.basis


def _basis(first: torch.Tensor, at: int, dim: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.cat([first[:, None], torch.randn(dim, dim - 1, generator=generator)], dim=1)
    q, _ = torch.linalg.qr(matrix)
    q = q.T.contiguous()
    q[0] *= torch.sign(q[0] @ first)
    order = list(range(1, dim))
    order.insert(at, 0)
    return q[order]


@pytest.fixture(scope="module")
def bert():
    model, tokenizer = tiny_bert_classifier()
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    pca = PCAConcepts(splitter, nb_concepts=4).fit(splitter.get_activations(TEXTS))
    return model, tokenizer, splitter, pca


def _edited_logits(model, tokenizer, text, layer, edit, special_tokens=True):
    """The classifier's logits with the split layer's hidden states replaced by `edit(a)` (at every position, or
    at text positions only)."""
    encoding = tokenizer(text, return_tensors="pt", return_special_tokens_mask=True)
    text_positions = ~encoding.pop("special_tokens_mask")[0].bool()
    if special_tokens:
        text_positions[:] = True

    def hook(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        new = hidden.clone()
        new[0, text_positions] = edit(hidden[0, text_positions])
        return (new, *output[1:]) if isinstance(output, tuple) else new

    handle = model.get_submodule(layer).register_forward_hook(hook)
    try:
        with torch.no_grad():
            return model(**encoding).logits[0]
    finally:
        handle.remove()


def test_concept_ig_is_complete_with_the_error_term_at_50_steps(bert):
    model, tokenizer, splitter, pca = bert
    outputs = concept_attributions(pca, TEXTS[:3], targets=[[0, 1]] * 3, n_perturbations=50, progress=False)
    for output in outputs:
        assert output.elements[-1] == "reconstruction error" and output.granularity == "concept"
        span = (output.attributions.sum(-1) - output.convergence_delta).abs()  # f(x) - f(baseline)
        assert (output.convergence_delta.abs() <= 0.01 * span).all()


@pytest.mark.parametrize("positions", ["all", "text"])
def test_concept_occlusion_equals_one_by_one_model_differences(bert, positions):
    model, tokenizer, splitter, pca = bert
    text = "a good movie"
    output = concept_attributions(
        pca, text, targets=1, method=Occlusion, positions=positions, progress=False
    )[0]
    layer = "bert.encoder.layer.1"
    clean = _edited_logits(model, tokenizer, text, layer, lambda a: a)
    expected = []
    for c in range(4):

        def without(a, c=c):
            z = pca.encode(a)
            removed = z.clone()
            removed[:, c] = 0
            return a + pca.decode(removed) - pca.decode(z)

        expected.append(
            clean[1] - _edited_logits(model, tokenizer, text, layer, without, positions == "all")[1]
        )
    reconstruction = _edited_logits(model, tokenizer, text, layer, pca.reconstruct, positions == "all")
    expected.append(clean[1] - reconstruction[1])
    assert_close_to_scale(
        output.attributions[0], torch.stack(expected), scale=clean.abs().max(), fraction=1e-4
    )
    assert_close_to_scale(output.scores[0], clean[1])


def test_concept_kernel_shap_is_efficient_against_the_all_removed_baseline(bert):
    model, tokenizer, splitter, pca = bert
    text = "what a film"
    output = concept_attributions(
        pca, text, targets=0, method=KernelShap, n_perturbations=64, progress=False
    )[0]
    clean = _edited_logits(model, tokenizer, text, "bert.encoder.layer.1", lambda a: a)
    empty = _edited_logits(
        model, tokenizer, text, "bert.encoder.layer.1", lambda a: pca.decode(0 * pca.encode(a))
    )
    assert_close_to_scale(
        output.attributions[0].sum(), clean[0] - empty[0], scale=clean.abs().max(), fraction=1e-3
    )


def test_word_players_sum_to_the_same_total_as_concept_players(bert):
    model, tokenizer, splitter, pca = bert
    per_concept = concept_attributions(pca, "a good movie", targets=1, n_perturbations=50, progress=False)[0]
    per_word = concept_attributions(
        pca, "a good movie", targets=1, granularity="word", n_perturbations=50, progress=False
    )[0]
    assert (
        per_word.elements[:2] == ["concept 0 | a", "concept 1 | a"] and per_word.granularity == "concept|word"
    )
    totals = [out.attributions.sum() - out.convergence_delta.sum() for out in (per_concept, per_word)]
    assert_close_to_scale(totals[0], totals[1], scale=per_word.attributions.abs().sum(), fraction=1e-4)


def test_planted_direction_ranks_first_and_silent_concepts_are_exactly_zero():
    model, tokenizer = tiny_bert_classifier()
    direction = torch.randn(32, generator=torch.Generator().manual_seed(4))
    direction /= direction.norm()
    with torch.no_grad():  # the decision rides on `direction` of the last block's [CLS] state
        model.bert.pooler.dense.weight.copy_(0.1 * torch.eye(32))
        model.bert.pooler.dense.bias.zero_()
        model.classifier.weight.copy_(torch.stack([-10 * direction, 10 * direction]))
        model.classifier.bias.zero_()
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    explainer = BasisConcepts(splitter, _basis(direction, at=5, dim=32), silent=(7,))
    explainer.fit(splitter.get_activations(TEXTS[:2]))
    outputs = concept_attributions(explainer, TEXTS, targets=1, n_perturbations=20, progress=False)
    ranking = global_importance(outputs).ranking("positive", k=2)
    assert ranking[0][0] == "concept 5" and ranking[0][1] > 5 * ranking[1][1]
    assert all(float(out.attributions[0, 7]) == 0.0 for out in outputs)
    occlusion = concept_attributions(explainer, TEXTS[0], targets=1, method=Occlusion, progress=False)[0]
    assert float(occlusion.attributions[0, 7]) == 0.0


def test_generation_concept_ig_is_complete_and_hides_nothing_it_should_not():
    model, tokenizer = tiny_llama()
    splitter = ModelWithSplitPoints(model, split_points=0, tokenizer=tokenizer, progress=False)
    pca = PCAConcepts(splitter, nb_concepts=3).fit(splitter.get_activations(TEXTS))
    prompt_ids = tokenizer("a good movie")["input_ids"]
    continuation = tokenizer(" is fun", add_special_tokens=False)["input_ids"]
    output = concept_attributions(
        pca, "a good movie", targets=continuation, n_perturbations=50, progress=False
    )
    output = output[0]
    ids = torch.tensor([prompt_ids + continuation])
    with torch.no_grad():
        logprobs = model(input_ids=ids).logits[0].log_softmax(-1)
    expected = [logprobs[len(prompt_ids) - 1 + k, token] for k, token in enumerate(continuation)]
    assert_close_to_scale(
        output.scores, torch.stack(expected)
    )  # the error term leaves the model's output as is
    span = (output.attributions.sum(-1) - output.convergence_delta).abs()
    assert (output.convergence_delta.abs() <= 0.01 * span).all()
    assert not torch.isnan(output.attributions).any()


def test_global_importance_means_per_target_equal_hand_means(bert):
    model, tokenizer, splitter, pca = bert
    outputs = concept_attributions(
        pca, TEXTS[:4], targets=[[0], [1], [0], [1]], method=Occlusion, progress=False
    )
    aggregate = global_importance(outputs)
    assert aggregate.targets == ["negative", "positive"] and aggregate.counts == [2, 2]
    rows = torch.stack([out.attributions[0] for out in outputs])
    assert_close_to_scale(aggregate.mean[0], (rows[0] + rows[2]) / 2)
    assert_close_to_scale(aggregate.mean_abs[1], (rows[1].abs() + rows[3].abs()) / 2)
    with pytest.raises(ValueError, match="target"):
        aggregate.ranking("neutral")


def test_input_to_concept_occlusion_and_ig_match_hand_computations(bert):
    model, tokenizer, splitter, pca = bert
    text = "a good movie"
    occlusion = input_to_concept(pca, text, concepts=[0, 2], method=Occlusion, progress=False)[0]
    assert occlusion.elements == ["a", "good", "movie"] and occlusion.target_names == [
        "concept 0",
        "concept 2",
    ]

    def summed(words):
        acts = splitter.get_activations(" ".join(words), granularity="all_tokens")["bert.encoder.layer.1"]
        return pca.encode(acts.activations)[1:-1, [0, 2]].sum(0)  # [CLS] and [SEP] left out, [MASK] kept

    mask = tokenizer.mask_token
    clean = summed(["a", "good", "movie"])
    for w in range(3):
        words = ["a", "good", "movie"]
        words[w] = mask
        assert_close_to_scale(occlusion.attributions[:, w], clean - summed(words), scale=clean.abs().max())
    ig = input_to_concept(pca, text, concepts=[0, 2], n_perturbations=50, progress=False)[0]
    span = (ig.attributions.sum(-1) - ig.convergence_delta).abs()
    assert (ig.convergence_delta.abs() <= 0.01 * span).all()
    assert_close_to_scale(ig.scores, clean)


def test_input_to_concept_on_a_causal_lm_explains_the_prompt_alone():
    model, tokenizer = tiny_llama()
    splitter = ModelWithSplitPoints(model, split_points=1, tokenizer=tokenizer, progress=False)
    pca = PCAConcepts(splitter, nb_concepts=3).fit(splitter.get_activations(TEXTS))
    output = input_to_concept(
        pca, "a good movie", concepts=1, aggregation=-1, method=Occlusion, progress=False
    )[0]
    assert output.elements == ["a", "good", "movie"]
    acts = splitter.get_activations("a good movie", granularity="all_tokens")["model.layers.1"].activations
    assert_close_to_scale(output.scores[0], pca.encode(acts)[-1, 1])


def test_calls_leave_the_model_untouched_also_after_an_error(bert):
    model, tokenizer, splitter, pca = bert
    model.train()
    grads = [p.requires_grad for p in model.parameters()]
    try:
        concept_attributions(pca, "a good movie", n_perturbations=4, progress=False)
        with pytest.raises(ValueError):
            concept_attributions(pca, "a good movie", targets="no such label", progress=False)
        input_to_concept(pca, "a good movie", concepts=0, method=Occlusion, progress=False)
        assert model.training and [p.requires_grad for p in model.parameters()] == grads
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    finally:
        model.eval()


def test_bad_arguments_are_named(bert):
    model, tokenizer, splitter, pca = bert
    with pytest.raises(ValueError, match="granularity"):
        concept_attributions(pca, "a movie", granularity="paragraph")
    with pytest.raises(ValueError, match="concepts holds 9"):
        concept_attributions(pca, "a movie", concepts=[9])
    with pytest.raises(TypeError, match="method"):
        concept_attributions(pca, "a movie", method="IG")
    with pytest.raises(ValueError, match="aggregation"):
        input_to_concept(pca, "a movie", concepts=0, aggregation="median")
    detached = PCAConcepts(None, nb_concepts=2).fit(torch.randn(20, 32))
    with pytest.raises(ValueError, match="ModelWithSplitPoints"):
        concept_attributions(detached, "a movie")


def test_concept_attributions_save_as_json_and_render_escaped_html(bert, tmp_path):
    model, tokenizer, splitter, pca = bert
    names = {0: "<script>alert(1)</script>"}
    outputs = concept_attributions(pca, "a good movie", method=Occlusion, concept_names=names, progress=False)
    output = outputs[0]
    output.save(tmp_path / "concepts.json")
    loaded = type(output).load(tmp_path / "concepts.json")
    assert loaded.elements == output.elements and torch.equal(loaded.attributions, output.attributions)
    assert loaded.split_point == "bert.encoder.layer.1" and loaded.granularity == "concept"
    page = output.to_html()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
