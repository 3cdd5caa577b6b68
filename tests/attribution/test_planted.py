"""On a classifier whose label is decided by one marker word, the marker gets the top attribution.

Both markers are evidence: the planted model was also trained on sentences without marker, target (0.5, 0.5).
InputXGradient is the fragile one on BERT-like encoders: LayerNorm right after the embedding sum is scale
invariant, so grad . word_embedding = -grad . (position + token_type embeddings), and on models trained
differently (another seed, a saturated pooler) it misses the marker in 3-30% of sentences. On this one it
must not miss.
"""

from __future__ import annotations

import pytest

from interpreto import InputXGradient, IntegratedGradients, Occlusion


@pytest.mark.parametrize("method", [IntegratedGradients, InputXGradient, Occlusion])
def test_marker_word_gets_top_attribution(planted, method):
    from interpreto.zoo.planted import planted_sentences

    model, tokenizer = planted
    rows = planted_sentences(40, seed=123)
    assert {label for _, label, _ in rows} == {0, 1}
    outputs = method(model, tokenizer, progress=False)([text for text, _, _ in rows])
    hits = 0
    for out, (_, label, marker_index) in zip(outputs, rows, strict=True):
        assert out.targets == [label]  # the planted model predicts the planted label
        hits += int(out.attributions[0].argmax()) == marker_index
    assert hits == len(rows)
