"""Static figures: decodable PNG and SVG, signed colors where the cells are, NaN grey, byte-identical files."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.image import imread

from interpreto import AttributionOutput
from interpreto.visualization.figures import attribution_figure, save_figure

PAYLOAD = "<img src=x onerror=alert(1)>"
NAN = math.nan


def _classification():
    return AttributionOutput(
        text=f"good {PAYLOAD} bad",
        elements=["good", PAYLOAD, "bad"],
        attributions=torch.tensor([[1.0, 0.0, -1.0]]),
        targets=[1],
        target_names=["positive"],
        scores=torch.tensor([2.5]),
        method="Saliency",
    )


def _generation():
    elements = ["the", "cat", PAYLOAD, " sat", " on", "averyveryverylongtoken"]
    values = torch.tensor(
        [[1.0, -0.5, 0.2, NAN, NAN, NAN], [-1.0, 0.3, 0.1, 0.5, NAN, NAN], [0.2, 0.4, -0.3, 0.1, 1.0, NAN]]
    )
    return AttributionOutput(
        text="the cat " + PAYLOAD,
        elements=elements,
        attributions=values,
        targets=[10, 11, 12],
        target_names=elements[3:],
        scores=torch.tensor([-1.0, -2.0, -3.0]),
        method="Occlusion",
        task="generation",
        score="log_probabilities",
        n_prompt_elements=3,
    )


def _cell_pixel(output, image, row, col):
    """Pixel (y, x) of the center of heat map cell (row, col) in a saved PNG."""
    box = attribution_figure(output).axes[0].get_position()
    n_rows, n_cols = output.attributions.shape
    x = box.x0 + (col + 0.5) / n_cols * box.width
    y = box.y1 - (row + 0.5) / n_rows * box.height
    return int(round((1 - y) * image.shape[0])), int(round(x * image.shape[1]))


def test_generation_png_colors_cells_by_sign_and_greys_nan(tmp_path):
    out = _generation()
    path = out.to_png(tmp_path / "gen.png")
    image = imread(path)[..., :3]
    fig = attribution_figure(out)
    assert image.shape[:2] == (round(fig.get_figheight() * 150), round(fig.get_figwidth() * 150))
    red = image[_cell_pixel(out, image, 0, 0)]  # +1: darkest red of the scale
    assert np.allclose(red, [0.883, 0.28, 0.28], atol=0.03)
    blue = image[_cell_pixel(out, image, 1, 0)]
    assert blue[2] > 0.85 and blue[0] < 0.4
    y, x = _cell_pixel(out, image, 0, 5)  # NaN: grey background with grey hatching, never colored or white
    patch = image[y - 3 : y + 4, x - 3 : x + 4].reshape(-1, 3)
    assert np.all(patch.max(axis=1) - patch.min(axis=1) < 0.03) and np.all(patch.mean(axis=1) < 0.97)
    assert np.any(np.abs(patch - 0xF2 / 255).max(axis=1) < 0.02)  # the NaN color itself


def test_classification_png_colors_words(tmp_path):
    out = _classification()
    image = imread(save_figure(out, tmp_path / "cls.png"))[..., :3]
    assert image.shape[0] < image.shape[1]  # a paragraph: wider than tall
    reds = (image[..., 0] > 0.8) & (image[..., 1] < 0.35)
    blues = (image[..., 2] > 0.85) & (image[..., 0] < 0.4)
    assert reds.sum() > 200 and blues.sum() > 200
    # "good" (+1) is the first word, to the left of "bad" (-1)
    assert np.nonzero(reds)[1].mean() < np.nonzero(blues)[1].mean()


@pytest.mark.parametrize("make", [_classification, _generation])
def test_svg_keeps_escaped_labels_as_text(make, tmp_path):
    out = make()
    raw = out.to_svg(tmp_path / "fig.svg").read_text()
    assert "<img" not in raw and "&lt;img src=x" in raw
    texts = ["".join(node.itertext()) for node in ET.fromstring(raw).iter("{http://www.w3.org/2000/svg}text")]
    assert (
        out.elements[0] in texts
        and out.method + " \u00b7 " + out.task + " \u00b7 score: " + out.score in texts
    )
    if out.task == "generation":
        assert "<img src=x on\u2026" in texts and "averyveryvery\u2026" in texts  # truncated with an ellipsis
    else:
        assert PAYLOAD in texts


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_two_calls_give_identical_bytes(suffix, tmp_path):
    for make in (_classification, _generation):
        first = save_figure(make(), tmp_path / f"a.{suffix}").read_bytes()
        second = save_figure([make()], tmp_path / f"b.{suffix}").read_bytes()
        assert first == second


def test_user_backend_and_pyplot_state_untouched(tmp_path):
    backend = matplotlib.get_backend()
    rc = dict(matplotlib.rcParams)
    save_figure(_generation(), tmp_path / "gen.png")
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == rc
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_bad_format_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="png"):
        save_figure(_classification(), tmp_path / "fig.bmp")
