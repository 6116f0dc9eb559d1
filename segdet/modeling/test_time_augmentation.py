"""Test-time augmentation of the semantic path (TEST.AUG, detectron2's keys): class scores averaged
over scales and horizontal flips.

A variant is one (scale, flip) pair: every short side of TEST.AUG.MIN_SIZES, each also mirrored
left-right when TEST.AUG.FLIP is on. Each variant's input goes through the model's own semantic
path (`semantic_logits` under TEST.AMP's autocast, then `semantic_scores`: the class weight
correction, ignore classes at 0), its scores are resized to the output size and flipped back, and
the output's scores are their plain mean; segmentation_image and segmentation_confidence come
from that mean.

What a scale means: a MIN_SIZE is the short side the *whole image* is resized to (its long side
at most TEST.AUG.MAX_SIZE), ResizeShortestEdge's rule applied to the original size (`height`,
`width` of the input), whatever INPUT.MIN_SIZE_TEST did before; so with MIN_SIZE_TEST 0 a
MIN_SIZE equal to the image's short side is the image as it is. The variant is resized from the
model input (after the test-time resize, bilinear as that resize is). A tile of tiled inference
is resized by the factor its whole image would be, so that every tile of a variant sees the scale
the whole image would. An input already at a variant's size gets that variant exactly as without
test-time augmentation.

Instances (PanopticFPN) come from the un-augmented pass; its panoptic fusion reads the averaged
segmentation_image.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from fvcore.transforms.transform import ScaleTransform

from segdet.data.transforms.augmentation import ResizeShortestEdge
from segdet.errors import ConfigError

Size = tuple[int, int]


def resize_image(image: torch.Tensor, size: Size) -> torch.Tensor:
    """A 3 x H x W image resized to `size` with the test-time resize's interpolation (bilinear)."""
    h, w = image.shape[-2:]
    if (h, w) == tuple(size):
        return image
    array = image.permute(1, 2, 0).cpu().numpy()
    resized = ScaleTransform(h, w, size[0], size[1], interp="bilinear").apply_image(array)
    return torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))


class SemanticTTA:
    """The variants of TEST.AUG and the mean of their scores, for a model's semantic path."""

    def __init__(self, min_sizes: Sequence[int], max_size: int = 4000, flip: bool = True):
        """
        Args:
            min_sizes: short sides of the whole image, one scale each (TEST.AUG.MIN_SIZES).
            max_size: bound of the long side (TEST.AUG.MAX_SIZE); 0 = none.
            flip: also each scale mirrored left-right (TEST.AUG.FLIP).
        """
        sizes = tuple(min_sizes) if isinstance(min_sizes, (list, tuple)) else (min_sizes,)
        if not sizes or not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes) or max_size < 0:
            raise ConfigError(f"test-time augmentation: short sides {min_sizes!r} and long side bound {max_size!r}; "
                              "expected one or more short sides > 0 and a bound >= 0")
        self.min_sizes = tuple(int(s) for s in sizes)
        self.max_size = int(max_size)
        self.flip = bool(flip)

    @classmethod
    def from_config(cls, cfg) -> Optional["SemanticTTA"]:
        """The TTA of TEST.AUG; None when TEST.AUG.ENABLED is off."""
        aug = cfg.TEST.AUG
        return cls(aug.MIN_SIZES, aug.MAX_SIZE, aug.FLIP) if aug.ENABLED else None

    @property
    def num_variants(self) -> int:
        return len(self.min_sizes) * (2 if self.flip else 1)

    def variant_size(self, min_size: int, output_size: Size, whole_size: Size) -> Size:
        """Network-input size, at scale `min_size`, of an input whose output is `output_size`
        pixels of an image of `whole_size` (the same for a whole image; a tile's part of it)."""
        scale = ResizeShortestEdge.scale(whole_size[0], whole_size[1], min_size, self.max_size)
        return ResizeShortestEdge.scaled_size(output_size[0], output_size[1], scale)

    def scores(self, model, batched_inputs: list[dict], whole_sizes: Optional[Sequence[Size]] = None,
               images=None, logits: Optional[torch.Tensor] = None) -> list[torch.Tensor]:
        """(C, height, width) scores of each input, the mean over the variants.

        Args:
            model: its `preprocess_image`, `semantic_logits`, `semantic_scores`, `output_size`.
            batched_inputs: model input dicts (`image`, optional `height`, `width`).
            whole_sizes: the size of the image each input is part of (tiles); default its output size.
            images, logits: the un-augmented pass, when the caller ran it (reused for the variant
                of that size unflipped, instead of running it again).
        """
        inputs = [x["image"] for x in batched_inputs]
        sizes = [tuple(im.shape[-2:]) for im in inputs]
        outputs = [model.output_size(x, size) for x, size in zip(batched_inputs, sizes)]
        wholes = list(whole_sizes) if whole_sizes is not None else outputs
        totals: list[Optional[torch.Tensor]] = [None] * len(inputs)
        for min_size in self.min_sizes:
            targets = [self.variant_size(min_size, out, whole) for out, whole in zip(outputs, wholes)]
            for flip in (False, True) if self.flip else (False,):
                if not flip and logits is not None and targets == sizes:
                    batch, batch_logits = images, logits
                else:
                    # Mirrored, then resized: the mirrored image at that scale, as a plain pass would
                    # get it. Before the padding, which stays at the right, where the model has it.
                    batch = model.preprocess_image([{"image": resize_image(im.flip(-1) if flip else im, size)}
                                                    for im, size in zip(inputs, targets)])
                    batch_logits = model.semantic_logits(batch.tensors)
                for i, (size, (h, w)) in enumerate(zip(batch.image_sizes, outputs)):
                    scores = model.semantic_scores(batch_logits[i], size, h, w)
                    if flip:
                        scores = scores.flip(-1)
                    totals[i] = scores if totals[i] is None else totals[i].add_(scores)
        return [total / self.num_variants for total in totals]
