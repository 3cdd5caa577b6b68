"""On a classifier whose label is decided by one marker word, the marker gets the top attribution.

The planted model predicts "positive" exactly when "great" is present and "negative" otherwise: "awful" is
not needed for "negative" (removing it changes nothing, and IG rightly gives it ~0), so the planted truth is
tested on the positive sentences, where the marker is the only evidence.
"""

from __future__ import annotations

import pytest

from interpreto import InputXGradient, IntegratedGradients, Occlusion


@pytest.mark.parametrize("method", [IntegratedGradients, InputXGradient, Occlusion])
def test_marker_word_gets_top_attribution(planted, method):
    from interpreto.zoo.planted import planted_sentences

    model, tokenizer = planted
    rows = [row for row in planted_sentences(40, seed=123) if row[1] == 1]
    assert len(rows) >= 10
    outputs = method(model, tokenizer, progress=False)([text for text, _, _ in rows])
    hits = 0
    for out, (_, label, marker_index) in zip(outputs, rows, strict=True):
        assert out.targets == [label]  # the planted model predicts the planted label
        hits += int(out.attributions[0].argmax()) == marker_index
    assert hits == len(rows)
