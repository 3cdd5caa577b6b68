"""Explain a ViT/Swin-style image classifier in one call: pixel attributions for the predicted class.

Images are their own modality: the attribution methods act on `pixel_values` (the image processor's
normalized `1 x C x H x W` tensor), not on token embeddings, so this module does not go through the text
pipeline. Every method explains the logit of one class, `f(x) = model(pixel_values=x).logits[0, c]`:

- `"integrated_gradients"` (Sundararajan et al., 2017): `(x - b) * int_0^1 grad f(b + a (x - b)) da`, the
  integral by `n_steps`-point Gauss-Legendre quadrature, as captum's `method="gausslegendre"`.
- `"saliency"` (Simonyan et al., 2014): `|grad f(x)|`.
- `"input_x_gradient"` (Shrikumar et al., 2016): `x * grad f(x)`.
- `"occlusion"` (Zeiler & Fergus, 2014): each pixel of a `patch x patch` tile (the model's patch size, over all
  channels) gets `f(x) - f(x with the tile set to the baseline)`.

Gradient methods sum the channel attributions into one `H x W` map; occlusion gives each pixel its tile's
score once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from interpreto.visualization.image import image_attribution_figure, save_image_figure

METHODS = ("integrated_gradients", "saliency", "input_x_gradient", "occlusion")

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class ImageClassificationExplainer:
    """Explains the predicted (or a chosen) class of a `...ForImageClassification` model with pixel attributions.

    Args:
        model: a `...ForImageClassification` model (ViT, DeiT, Swin...). Never modified: it is run in eval mode
            and its training flag is restored; no hooks; gradients only w.r.t. `pixel_values`.
        image_processor: its image processor (resizing, rescaling, normalization).
        method: `"integrated_gradients"`, `"saliency"`, `"input_x_gradient"` or `"occlusion"`.
        n_steps: integration points of integrated gradients.
        internal_batch_size: images per forward (integration points, occluded images).
        baseline: the reference input in `pixel_values` space (after normalization), a number or a tensor
            broadcastable to `pixel_values`: the integration start of integrated gradients and the fill value
            of occlusion. `0.0` is the per-channel mean image of the normalization.

    Attributes (set by each call):
        predicted_class_index: the class the model predicts.
        predicted_class_name: its label.
        target_class_index / target_class_name: the explained class.
        pixel_values: the `1 x C x H x W` input the model saw.
        attributions: the `H x W` attributions.
        convergence_delta: for integrated gradients, `attributions.sum() - (f(x) - f(baseline))`; else None.

    Examples:
        >>> import torch
        >>> from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
        >>> _ = torch.manual_seed(0)
        >>> config = ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2,
        ...     num_attention_heads=2, intermediate_size=64, num_labels=3)
        >>> model = ViTForImageClassification(config)
        >>> processor = ViTImageProcessor(size={"height": 16, "width": 16})
        >>> explainer = ImageClassificationExplainer(model, processor)
        >>> image = (torch.rand(16, 16, 3) * 255).to(torch.uint8).numpy()
        >>> attributions = explainer(image)
        >>> attributions.shape
        torch.Size([16, 16])
        >>> gap = float(attributions.sum()) - explainer.convergence_delta  # f(x) - f(baseline)
        >>> abs(explainer.convergence_delta) <= 0.01 * abs(gap)
        True
    """

    def __init__(
        self,
        model: torch.nn.Module,
        image_processor: Any,
        method: str = "integrated_gradients",
        n_steps: int = 50,
        internal_batch_size: int = 16,
        baseline: float | torch.Tensor = 0.0,
    ) -> None:
        self.model = model
        self.image_processor = image_processor
        self.method = method
        self.n_steps = n_steps
        self.internal_batch_size = internal_batch_size
        self.baseline = baseline
        self.pixel_values: torch.Tensor | None = None
        self.attributions: torch.Tensor | None = None
        self.convergence_delta: float | None = None

    def __call__(self, image: Any, class_name: str | None = None, index: int | None = None) -> torch.Tensor:
        """Attributions (`H x W`, signed) of the predicted class, or of `class_name` / `index` if given.

        Args:
            image: a PIL image, a numpy `H x W x C` uint8 array, or a `pixel_values` tensor (`C x H x W` or
                `1 x C x H x W`, already normalized).
            class_name: the label to explain, one of `model.config.id2label`'s values.
            index: the class index to explain.

        Returns:
            The pixel attributions, a float tensor `H x W`.
        """
        self._check_arguments()
        pixel_values = self._pixel_values(image)
        training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                logits = self.model(pixel_values=pixel_values).logits[0]
            self.predicted_class_index = int(logits.argmax())
            self.predicted_class_name = self._label(self.predicted_class_index)
            target = self._target(class_name, index, n_classes=logits.shape[-1])
            self.target_class_index, self.target_class_name = target, self._label(target)
            baseline = torch.as_tensor(self.baseline, dtype=pixel_values.dtype, device=pixel_values.device)
            baseline = baseline.expand_as(pixel_values).clone()
            attribute = _METHODS[self.method]
            attributions, delta = attribute(self, pixel_values, baseline, target)
        finally:
            self.model.train(training)
        self.pixel_values = pixel_values.detach()
        self.attributions = attributions.detach().cpu()
        self.convergence_delta = delta
        return self.attributions

    # ---- input and target -------------------------------------------------------------------------------

    def _check_arguments(self) -> None:
        """Validates the hyper-parameters, naming the one at fault."""
        if self.method not in _METHODS:
            raise ValueError(f"method={self.method!r} is not supported: use one of {list(METHODS)}.")
        for name in ("n_steps", "internal_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer.")

    def _pixel_values(self, image: Any) -> torch.Tensor:
        """The `1 x C x H x W` normalized input on the model's device and dtype."""
        parameter = next(self.model.parameters())
        if isinstance(image, torch.Tensor):
            if image.ndim == 3:
                image = image.unsqueeze(0)
            if image.ndim != 4 or image.shape[0] != 1 or not image.is_floating_point():
                raise ValueError(
                    f"image as a tensor must be float pixel_values of shape C x H x W or 1 x C x H x W, "
                    f"got {image.dtype} of shape {tuple(image.shape)}."
                )
            pixel_values = image
        else:
            is_pil = type(image).__module__.startswith("PIL.")
            if isinstance(image, np.ndarray):
                if image.ndim != 3 or image.shape[-1] not in (1, 3) or image.dtype != np.uint8:
                    raise ValueError(
                        f"image as a numpy array must be H x W x C uint8 with C in (1, 3), got {image.dtype} "
                        f"of shape {image.shape}."
                    )
            elif not is_pil:
                raise TypeError(
                    f"image must be a PIL image, a numpy H x W x C uint8 array or a pixel_values tensor, "
                    f"got {type(image).__name__}."
                )
            pixel_values = self.image_processor(images=image, return_tensors="pt")["pixel_values"]
        return pixel_values.detach().to(device=parameter.device, dtype=parameter.dtype)

    def _label(self, class_index: int) -> str:
        id2label = getattr(self.model.config, "id2label", None) or {}
        return str(id2label.get(class_index, f"LABEL_{class_index}"))

    def _target(self, class_name: str | None, index: int | None, n_classes: int) -> int:
        """The class to explain: `index`, `class_name`, or the predicted one."""
        if class_name is not None and index is not None:
            raise ValueError("Give class_name or index, not both.")
        if index is not None:
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < n_classes:
                raise ValueError(f"index={index!r} is out of range: the model has {n_classes} classes.")
            return index
        if class_name is not None:
            label2id = {str(name): int(i) for i, name in self.model.config.id2label.items()}
            if class_name not in label2id:
                raise ValueError(f"class_name={class_name!r} is not a label: use one of {sorted(label2id)}.")
            return label2id[class_name]
        return self.predicted_class_index

    # ---- methods ----------------------------------------------------------------------------------------

    def _target_logits(self, pixel_values: torch.Tensor, target: int) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits[:, target]

    def _gradient(self, pixel_values: torch.Tensor, target: int) -> torch.Tensor:
        """d f / d pixel_values, batched by `internal_batch_size`, the model's parameters untouched."""
        gradients = []
        for batch in pixel_values.split(self.internal_batch_size):
            batch = batch.detach().requires_grad_(True)
            with torch.enable_grad():
                (gradient,) = torch.autograd.grad(self._target_logits(batch, target).sum(), batch)
            gradients.append(gradient)
        return torch.cat(gradients)

    def _saliency(self, pixel_values, baseline, target):
        return self._gradient(pixel_values, target)[0].abs().sum(0), None

    def _input_x_gradient(self, pixel_values, baseline, target):
        return (pixel_values * self._gradient(pixel_values, target))[0].sum(0), None

    def _integrated_gradients(self, pixel_values, baseline, target):
        nodes, weights = np.polynomial.legendre.leggauss(self.n_steps)
        alphas = torch.as_tensor((nodes + 1) / 2, dtype=pixel_values.dtype, device=pixel_values.device)
        weights = torch.as_tensor(weights / 2, dtype=pixel_values.dtype, device=pixel_values.device)
        difference = pixel_values - baseline
        path = baseline + alphas.view(-1, 1, 1, 1) * difference
        gradients = self._gradient(path, target)
        attributions = difference[0] * (weights.view(-1, 1, 1, 1) * gradients).sum(0)
        with torch.inference_mode():
            scores = self._target_logits(torch.cat([pixel_values, baseline]), target)
        delta = float(attributions.sum() - (scores[0] - scores[1]))
        return attributions.sum(0), delta

    def _occlusion(self, pixel_values, baseline, target):
        patch = _patch_size(self.model.config)
        height, width = pixel_values.shape[-2:]
        tiles = [(top, left) for top in range(0, height, patch[0]) for left in range(0, width, patch[1])]
        occluded = pixel_values.repeat(len(tiles), 1, 1, 1)
        for row, (top, left) in enumerate(tiles):
            window = (slice(top, top + patch[0]), slice(left, left + patch[1]))
            occluded[row, :, window[0], window[1]] = baseline[0, :, window[0], window[1]]
        with torch.inference_mode():
            score = self._target_logits(pixel_values, target)[0]
            scores = torch.cat(
                [self._target_logits(b, target) for b in occluded.split(self.internal_batch_size)]
            )
        attributions = torch.zeros(height, width, dtype=pixel_values.dtype, device=pixel_values.device)
        for (top, left), occluded_score in zip(tiles, scores, strict=True):
            attributions[top : top + patch[0], left : left + patch[1]] = score - occluded_score
        return attributions, None

    # ---- rendering --------------------------------------------------------------------------------------

    def image(self) -> np.ndarray:
        """The explained input as an `H x W x 3` array in [0, 1], the processor's normalization undone."""
        if self.pixel_values is None:
            raise RuntimeError("Call the explainer on an image before drawing it.")
        pixels = self.pixel_values[0].float().cpu()
        if getattr(self.image_processor, "do_normalize", False):
            mean = torch.as_tensor(self.image_processor.image_mean, dtype=pixels.dtype).view(-1, 1, 1)
            std = torch.as_tensor(self.image_processor.image_std, dtype=pixels.dtype).view(-1, 1, 1)
            pixels = pixels * std + mean
        pixels = pixels.expand(3, -1, -1) if pixels.shape[0] == 1 else pixels[:3]
        return pixels.permute(1, 2, 0).clamp(0, 1).numpy()

    def visualize(
        self, method: str = "heatmap", save_path: str | Path | None = None, side_by_side: bool = False
    ) -> Figure:
        """Draws the last explanation; writes a PNG if `save_path` is given.

        Args:
            method: `"heatmap"`, `"overlay"`, `"masked_image"` or `"alpha_scaling"`.
            save_path: the PNG to write (no timestamp metadata).
            side_by_side: draw the original image on the left and the attributions on the right.

        Returns:
            The matplotlib `Figure` (Agg canvas, not registered with pyplot).
        """
        if self.attributions is None:
            raise RuntimeError("Call the explainer on an image before visualize().")
        title = f"{self.method}: {self.target_class_name}"
        fig = image_attribution_figure(
            self.image(), self.attributions.float().numpy(), method, side_by_side, title
        )
        if save_path is not None:
            save_image_figure(fig, save_path)
        return fig


def _patch_size(config: Any) -> tuple[int, int]:
    """The model's patch size as (height, width)."""
    patch = getattr(config, "patch_size", None)
    if patch is None:
        raise ValueError("method='occlusion' needs model.config.patch_size.")
    return (patch, patch) if isinstance(patch, int) else tuple(patch)


_METHODS: dict[str, Callable] = {
    "integrated_gradients": ImageClassificationExplainer._integrated_gradients,
    "saliency": ImageClassificationExplainer._saliency,
    "input_x_gradient": ImageClassificationExplainer._input_x_gradient,
    "occlusion": ImageClassificationExplainer._occlusion,
}
