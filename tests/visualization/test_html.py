"""HTML pages: standalone, every token and label escaped, signed colors, one row per target."""

from __future__ import annotations

import re

import torch

from interpreto import AttributionOutput, Occlusion, save_html

PAYLOAD = "<img src=x onerror=alert(1)>"


def _output(elements, names=("positive",), values=None):
    values = (
        values if values is not None else torch.linspace(-1, 1, len(elements))[None].repeat(len(names), 1)
    )
    return AttributionOutput(
        text=" ".join(elements),
        elements=list(elements),
        attributions=values,
        targets=list(range(len(names))),
        target_names=list(names),
        scores=torch.zeros(len(names)),
    )


def test_injected_markup_is_shown_as_text(tmp_path):
    out = _output(["fine", PAYLOAD, "<script>document.title='pwned'</script>"], names=[f"<b>{PAYLOAD}</b>"])
    page = save_html([out], tmp_path / "page.html").read_text()
    assert "<img" not in page and "<script" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert out.to_html().count("&lt;img") >= 2  # element and label
    assert "&lt;img" in out._repr_html_()


def test_page_is_standalone_and_signed(tmp_path):
    out = _output(["bad", "neutral", "good"], values=torch.tensor([[-2.0, 0.0, 1.0]]))
    page = out.to_html()
    assert not re.search(r"(src|href)=\"?https?:", page) and "@import" not in page and "<script" not in page
    colors = re.findall(r"background:(rgba\([^)]*\)|transparent)", page)
    # legend first (2 swatches), then the three elements: blue for against, nothing for 0, red for for
    assert colors[2].startswith("rgba(37, 99, 235") and colors[2].endswith("0.850)")
    assert colors[3] == "rgba(220, 38, 38, 0.000)" or colors[3].startswith("rgba(37")
    assert colors[4].startswith("rgba(220, 38, 38") and colors[4].endswith("0.425)")
    assert "for the target" in page and "against the target" in page


def test_generation_page_has_one_row_per_continuation_token(gpt2, tmp_path):
    model, tokenizer = gpt2
    out = Occlusion(model, tokenizer, progress=False)("the cat sat", " on the mat")[0]
    page = save_html(out, tmp_path / "gen.html").read_text()
    assert page.count('class="interpreto-row"') == len(out.targets)
    assert "interpreto-nan" in page


def test_generation_page_is_a_heat_map_table_with_escaped_labels():
    elements = ["the", PAYLOAD, " sat", " on"]
    nan = float("nan")
    out = AttributionOutput(
        text="the " + PAYLOAD,
        elements=elements,
        attributions=torch.tensor([[1.0, -0.5, nan, nan], [0.2, -1.0, 0.4, nan]]),
        targets=[5, 6],
        target_names=[" sat", PAYLOAD],
        scores=torch.zeros(2),
        task="generation",
        n_prompt_elements=2,
    )
    page = out.to_html()
    assert (
        "<img" not in page and page.count("&lt;img src=x onerror=alert(1)&gt;") >= 2
    )  # header and row label
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    rows = re.findall(r'<tr class="interpreto-row">(.*?)</tr>', body)
    assert len(rows) == 2
    assert [row.count("<td") for row in rows] == [len(elements)] * 2
    assert [row.count("interpreto-nan") for row in rows] == [2, 1]
    header = page.split("<thead>")[1].split("</thead>")[0]
    assert header.count("<th") == len(elements) + 1
    assert 'style="background:rgba(220, 38, 38, 0.850)"' in rows[0]  # +1 of the row: darkest red
