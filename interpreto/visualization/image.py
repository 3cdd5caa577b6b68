"""Static figures of pixel attributions: heatmap, overlay, masked image and alpha scaling.

Figures are built on `matplotlib.figure.Figure` with an Agg canvas: the user's pyplot state and backend are
never touched, and PNG files carry no timestamp or software metadata, so the same explanation gives the same
bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from interpreto.visualization.figures import signed_colormap

IMAGE_METHODS = ("heatmap", "overlay", "masked_image", "alpha_scaling")
PANEL_INCHES = 3.0
DPI = 100


def _unit_abs(attributions: np.ndarray) -> np.ndarray:
    """|attributions| divided by its maximum, in [0, 1] (all zeros stay zeros)."""
    magnitude = np.abs(attributions)
    scale = magnitude.max()
    return magnitude / scale if scale > 0 else magnitude


def _draw(ax, image: np.ndarray, attributions: np.ndarray, method: str) -> None:
    """Draws one attribution panel on `ax`."""
    bound = float(np.abs(attributions).max()) or 1.0
    if method == "heatmap":
        ax.imshow(attributions, cmap=signed_colormap(), vmin=-bound, vmax=bound, interpolation="nearest")
    elif method == "overlay":
        ax.imshow(image.mean(axis=-1), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.imshow(
            attributions, cmap=signed_colormap(), vmin=-bound, vmax=bound, alpha=0.6, interpolation="nearest"
        )
    elif method == "masked_image":
        ax.imshow(image * _unit_abs(attributions)[..., None], interpolation="nearest")
    else:  # alpha_scaling: the image shows through where the attribution is large
        ax.imshow(
            np.concatenate([image, _unit_abs(attributions)[..., None]], axis=-1), interpolation="nearest"
        )


def image_attribution_figure(
    image: np.ndarray,
    attributions: np.ndarray,
    method: str = "heatmap",
    side_by_side: bool = False,
    title: str | None = None,
):
    """A matplotlib `Figure` (Agg canvas, not registered with pyplot) drawing pixel attributions.

    Args:
        image: the input image, `H x W x 3` floats in [0, 1].
        attributions: signed pixel attributions, `H x W`.
        method: `"heatmap"` (signed colors, blue negative, red positive), `"overlay"` (heatmap over the
            grayscale image), `"masked_image"` (the image times the normalized |attribution|) or
            `"alpha_scaling"` (the image with opacity the normalized |attribution|).
        side_by_side: draw the original image on the left and the attribution on the right.
        title: drawn above the attribution panel.

    Returns:
        The figure, `PANEL_INCHES` wide per panel and `PANEL_INCHES` high.

    Examples:
        >>> import numpy as np
        >>> fig = image_attribution_figure(np.zeros((4, 4, 3)), np.eye(4), side_by_side=True)
        >>> [float(v) for v in fig.get_size_inches()]
        [6.0, 3.0]
    """
    if method not in IMAGE_METHODS:
        raise ValueError(f"method={method!r} is not supported: use one of {list(IMAGE_METHODS)}.")
    image = np.clip(np.asarray(image, dtype=float), 0.0, 1.0)
    attributions = np.nan_to_num(np.asarray(attributions, dtype=float))
    if image.ndim != 3 or image.shape[:2] != attributions.shape:
        raise ValueError(
            f"image (shape {image.shape}) must be H x W x 3 with the shape of attributions ({attributions.shape})."
        )
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_panels = 2 if side_by_side else 1
    fig = Figure(figsize=(PANEL_INCHES * n_panels, PANEL_INCHES))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    if side_by_side:
        axes[0].imshow(image, interpolation="nearest")
        axes[0].set_title("original", fontsize=9)
    _draw(axes[-1], image, attributions, method)
    if title:
        axes[-1].set_title(title, fontsize=9)
    for ax in axes:
        ax.set_axis_off()
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.9, wspace=0.05)
    return fig


def save_image_figure(fig, path: str | Path) -> Path:
    """Writes `fig` as a PNG of `DPI` dots per inch with no metadata, and returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return path
