"""Concept pages and overviews: escaped markup, highlight intensity = activation / max, density and histogram
equal hand counts, standalone and byte-identical output, pyplot untouched, and (with chromium) a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.image import imread

from interpreto.concepts.interpret import ConceptCodes, ConceptExample, ContextToken, LogitLens
from interpreto.visualization.concept_figures import HISTOGRAM_LABEL
from interpreto.visualization.concept_page import concept_overview, concept_page
from tests.tolerance import assert_close_to_scale

SCRIPT = "<script>document.title='pwned'</script>"
ATTRIBUTE = '"onmouseover="document.title=\'pwned\'" x="'
IMG = "<img src=x onerror=\"document.title='pwned'\">"


def _codes(seed: int = 0) -> ConceptCodes:
    """12 texts of 9 tokens, 3 concepts: ReLU noise (about half zeros); position 0 unscored with a huge value."""
    generator = torch.Generator().manual_seed(seed)
    tokens, codes, scored = [], [], []
    for k in range(12):
        words = [f" w{k}_{j}" for j in range(9)]
        words[2], words[4] = f" {SCRIPT}", ATTRIBUTE
        values = torch.relu(torch.randn(9, 3, generator=generator))
        values[0] = 50.0  # the attention sink: never counted, never the colour scale
        values[3, 2] = -2.0  # concept 2 is signed: a negative activation
        mask = torch.ones(9, dtype=torch.bool)
        mask[0] = False
        tokens.append(words)
        codes.append(values)
        scored.append(mask)
    return ConceptCodes(texts=["".join(t) for t in tokens], tokens=tokens, codes=codes, scored=scored)


def _examples(codes: ConceptCodes, concept: int, k: int = 4) -> list[ConceptExample]:
    values, where = codes.values(concept)
    best = torch.argsort(values, descending=True, stable=True)[:k]
    return [codes.example(concept, *where[i].tolist(), context=4) for i in best]


def _page(codes=None, concept: int = 1):
    codes = codes or _codes()
    lens = LogitLens(concept, top=[(SCRIPT, 3.5), (" cat", 2.0)], bottom=[(IMG, -4.0)])
    scores = {"detection": 0.75, ATTRIBUTE: 0.5}
    return concept_page(codes, concept, _examples(codes, concept), label=IMG, scores=scores, logit_lens=lens)


def _hand_values(codes: ConceptCodes, concept: int) -> np.ndarray:
    """The concept's activations over the scored tokens, read from the raw lists with a loop."""
    values = []
    for matrix, mask in zip(codes.codes, codes.scored, strict=True):
        for j in range(matrix.shape[0]):
            if bool(mask[j]):
                values.append(float(matrix[j, concept]))
    return np.array(values, dtype=np.float64)


class _Spans(HTMLParser):
    """Every element's tag, attributes and text, as the browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.elements, self.stack = [], []

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.elements.append(element)
        self.stack.append(element)

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()["tag"] != tag:
            pass

    def handle_data(self, data):
        if self.stack:
            self.stack[-1]["text"] += data


def _parse(html: str) -> list[dict]:
    parser = _Spans()
    parser.feed(html)
    return parser.elements


@pytest.mark.parametrize("kind", ["page", "overview"])
def test_injected_markup_is_escaped_never_markup(kind):
    codes = _codes()
    if kind == "page":
        html = _page(codes).html()
    else:
        html = concept_overview(
            codes, {c: _examples(codes, c) for c in range(3)}, labels={0: IMG}, scores={ATTRIBUTE: {0: 0.5}}
        ).html()
    elements = _parse(html)
    tags = {element["tag"] for element in elements}
    assert "script" not in tags and "img" not in tags
    assert all(not name.startswith("on") for element in elements for name in element["attrs"])
    assert SCRIPT not in html and IMG not in html and ATTRIBUTE not in html
    texts = [element["text"] for element in elements]
    assert any(SCRIPT in text for text in texts)  # shown, as text
    assert any(ATTRIBUTE in text for text in texts) and any(IMG in text for text in texts)


def test_highlight_intensity_is_activation_over_the_concept_max():
    codes = _codes()
    for concept in (1, 2):
        page = _page(codes, concept)
        scale = float(np.abs(_hand_values(codes, concept)).max())
        assert page.stats.scale == scale
        spans = [e for e in _parse(page.html()) if "interpreto-tok" in e["attrs"].get("class", "")]
        expected = [t for example in page.examples for t in example.context]
        spans = spans[: len(expected)]  # the legend's swatches come after the examples
        checked = negative = 0
        for span, token in zip(spans, expected, strict=True):
            assert span["text"] == token.text
            if "interpreto-unscored" in span["attrs"]["class"]:
                assert "style" not in span["attrs"] and token.activation == 50.0
                continue
            match = re.fullmatch(r"background:rgba\((\d+), (\d+), (\d+), ([0-9.]+)\)", span["attrs"]["style"])
            intensity = float(match.group(4)) / 0.85
            # 3 decimals of alpha: the intensity is exact to 0.0005 / 0.85
            assert_close_to_scale(
                intensity, min(abs(token.activation) / scale, 1.0), scale=1.0, fraction=6e-4
            )
            if token.activation < 0:
                negative += 1
                assert match.group(1, 2, 3) == ("37", "99", "235")
            elif token.activation > 0:
                assert match.group(1, 2, 3) == ("220", "38", "38")
            checked += 1
        assert checked > 10
        assert negative == 0 if concept == 1 else negative > 0  # concept 2's -2.0 is drawn blue
        # the examples' own tokens are outlined: exactly one per token example
        focus = [e for e in spans if "interpreto-focus" in e["attrs"]["class"]]
        assert [e["text"] for e in focus] == [ex.context[ex.focus[0]].text for ex in page.examples]


def test_density_and_max_equal_hand_counts():
    codes = _codes()
    overview = concept_overview(codes, {c: _examples(codes, c) for c in range(3)})
    for concept in range(3):
        values = _hand_values(codes, concept)
        firing = sum(1 for v in values if v > 0)
        assert len(values) == 12 * 8 and 0 < firing < len(values)
        page = _page(codes, concept)
        assert page.stats.n_firing == firing and page.stats.density == firing / len(values)
        assert page.stats.max_activation == values.max() and values.max() < 50.0  # the sink is left out
        shown = {e["attrs"]["class"].split()[-1]: float(e["attrs"]["data-value"]) for e in _parse(page.html())
                 if "data-value" in e["attrs"]}  # fmt: skip
        assert shown == {"interpreto-density": firing / len(values), "interpreto-max": values.max()}
        assert f"{100 * firing / len(values):.3g}%" in page.html()
        row = next(e for e in _parse(overview.html()) if e["attrs"].get("data-concept") == str(concept))
        assert row["tag"] == "tr"
        assert overview.rows[concept].stats.density == firing / len(values)


def test_histogram_bars_equal_numpy_histogram_of_the_nonzero_values():
    codes = _codes()
    for concept in (1, 2):
        values = _hand_values(codes, concept)
        counts, edges = np.histogram(values[values != 0], bins=30)
        page = _page(codes, concept)
        axes = [ax for ax in page.figure().axes if ax.get_label() == HISTOGRAM_LABEL]
        assert len(axes) == 1 and axes[0].get_yscale() == "log"
        bars = axes[0].patches
        assert [bar.get_height() for bar in bars] == counts.tolist()
        assert_close_to_scale([bar.get_x() for bar in bars], edges[:-1], scale=edges)
        assert_close_to_scale([bar.get_width() for bar in bars], np.diff(edges), scale=edges)
        # the HTML's inline SVG carries the same counts
        rects = [e for e in _parse(page.html()) if e["tag"] == "rect"]
        assert [int(r["attrs"]["data-count"]) for r in rects] == counts.tolist()
        assert sum(counts) == int((values != 0).sum())


def test_pages_are_standalone_and_deterministic(tmp_path):
    codes = _codes()
    page = _page(codes)
    overview = concept_overview(
        codes, {c: _examples(codes, c) for c in range(3)}, scores={"detection": {1: 0.3}}
    )
    for name, item in (("page", page), ("overview", overview)):
        html = item.html()
        assert html.startswith("<!DOCTYPE html>") and "<style>" in html
        assert "http" not in html and "<script" not in html.lower()
        # nothing that loads a resource: no src/href attribute, no <link>, no @import
        elements = _parse(html)
        assert not [
            e for e in elements if {"src", "href"} & set(e["attrs"]) or e["tag"] in ("link", "iframe")
        ]
        assert "@import" not in html and "url(" not in html
        first = item.save(tmp_path / f"{name}-a.html").read_bytes()
        assert first == item.save(tmp_path / f"{name}-b.html").read_bytes() == html.encode()
        assert item._repr_html_().startswith("<style>")
        png_a = item.save_png(tmp_path / f"{name}-a.png").read_bytes()
        png_b = item.save_png(tmp_path / f"{name}-b.png").read_bytes()
        assert png_a == png_b and png_a[:8] == b"\x89PNG\r\n\x1a\n"
    rebuilt = _page(_codes())
    assert rebuilt.html() == page.html()


def test_figure_colours_the_focus_token_and_leaves_pyplot_alone(tmp_path):
    backend, rc = matplotlib.get_backend(), dict(matplotlib.rcParams)
    codes = _codes()
    page = _page(codes)
    image = imread(page.save_png(tmp_path / "page.png"))[..., :3]
    # the top example's own token has intensity 1 (it is the max): the darkest red of the scale is drawn
    assert page.examples[0].activation == page.stats.max_activation
    darkest = np.abs(image - np.array([0.883, 0.277, 0.277])).max(axis=2) < 0.03
    assert darkest.sum() > 100
    concept_overview(codes, {1: _examples(codes, 1)}).save_png(tmp_path / "overview.png")
    assert matplotlib.get_backend() == backend and dict(matplotlib.rcParams) == rc
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_overview_rows_sorted_and_scores_read_in_every_layout():
    codes = _codes()
    examples = {c: _examples(codes, c) for c in (2, 0, 1)}
    by_name = {"fuzzing": {0: 0.2, 1: 0.9, 2: 0.5}}
    by_concept = {0: {"fuzzing": 0.2}, 1: {"fuzzing": 0.9}, 2: {"fuzzing": 0.5}}

    class Score:  # a LabelScore as helper C defines it: only .method and .value are read
        def __init__(self, value):
            self.method, self.value = "fuzzing", value

    one_scorer = {0: Score(0.2), 1: Score(0.9), 2: Score(0.5)}
    for scores in (by_name, by_concept, one_scorer):
        overview = concept_overview(codes, examples, scores=scores)
        assert [row.concept for row in overview.rows] == [0, 1, 2]
        assert overview.score_names == ["fuzzing"] and overview.rows[1].scores == {"fuzzing": 0.9}
        ranked = concept_overview(codes, examples, scores=scores, sort_by="fuzzing")
        assert [row.concept for row in ranked.rows] == [1, 2, 0]
    densities = [_hand_values(codes, c) for c in range(3)]
    expected = sorted(range(3), key=lambda c: -float((densities[c] > 0).mean()))
    assert [row.concept for row in concept_overview(codes, examples, sort_by="density").rows] == expected
    overview = concept_overview(codes, examples)
    assert all(len(row.examples) == 3 for row in overview.rows)
    assert [ex.activation for ex in overview.rows[0].examples] == [ex.activation for ex in examples[0][:3]]
    with pytest.raises(ValueError, match="sort_by"):
        concept_overview(codes, examples, sort_by="nope")


def test_errors_name_the_argument():
    codes = _codes()
    with pytest.raises(ValueError, match="concept=7"):
        concept_page(codes, 7, [])
    with pytest.raises(ValueError, match="examples"):
        concept_page(codes, 0, _examples(codes, 1))
    with pytest.raises(ValueError, match="examples_by_concept"):
        concept_overview(codes, {5: []})
    with pytest.raises(ValueError, match="bins"):
        concept_page(codes, 0, [], bins=0)


def test_a_built_example_and_a_concept_that_never_fires():
    codes = ConceptCodes(
        texts=["a\nb"],
        tokens=[["a", "\n", "b"]],
        codes=[torch.zeros(3, 1)],
        scored=[torch.ones(3, dtype=torch.bool)],
    )
    example = ConceptExample(0, 0.0, "b", 0, 2, [ContextToken("a", 0.0), ContextToken("\n", 0.0), ContextToken("b", 0.0)],
                             (2, 3))  # fmt: skip
    page = concept_page(codes, 0, [example])
    assert page.stats.density == 0.0 and page.stats.counts.size == 0
    assert "no nonzero activation" in page.html() and "\u23ce" in page.html()  # a newline token stays visible
    assert page.figure().axes  # draws without bars


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def _chromium(tmp_path, *arguments: str) -> subprocess.CompletedProcess:
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_browser_runs_no_injected_script_and_renders(tmp_path):
    codes = _codes()
    path = _page(codes).save(tmp_path / "page.html")
    result = _chromium(tmp_path, "--virtual-time-budget=2000", "--dump-dom", path.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", result.stdout, re.S)
    # a payload that ran would have set the title to 'pwned'; the label is in it as text
    shown = IMG.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert title is not None and title.group(1) == f"Concept 1: {shown}"
    assert "<script>document.title" not in result.stdout and "&lt;script&gt;document.title" in result.stdout
    overview = concept_overview(codes, {c: _examples(codes, c) for c in range(3)}, labels={0: IMG})
    path = overview.save(tmp_path / "overview.html")
    result = _chromium(tmp_path, "--virtual-time-budget=2000", "--dump-dom", path.as_uri())
    assert "<title>interpreto concepts</title>" in result.stdout
    shot = tmp_path / "page.png"
    result = _chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1100,900", (tmp_path / "page.html").as_uri()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    image = imread(shot)[..., :3]
    reds = (image[..., 0] > 0.8) & (image[..., 1] < 0.75) & (image[..., 2] < 0.75)
    assert reds.sum() > 500  # highlighted tokens and histogram bars, not a blank page
    assert (image.min(axis=2) < 0.3).sum() > 1000  # dark text
