"""Predictor: a trained model applied to image arrays, as a Python call.

    predictor = Predictor.from_checkpoint("output/model_final.pth")
    output = predictor(image_rgb)        # the output dict of ARCHITECTURE.md, on the CPU
    output["segmentation_image"]         # (H, W) int64 class ids at the image's own size

A segdet checkpoint carries the classes (`metadata`) and the training config (`config`):
input size, normalization, class names, colors, ignore ids and label format. So a model
file alone is enough (`from_checkpoint`), or a config plus weights (`Predictor(cfg)`); both
load it through `segdet.modeling.load.load_model`.

Large images: with TEST.TILE_SIZE > 0 (or `tile_size=`), an image larger than one tile is
segmented tile by tile (see `segdet.inference.tiling`), instances included: they are stitched
across the tiles (`segdet.inference.tile_instances`) and their masks come as crops,
`instances.pred_mask_crops`, instead of full-image `pred_masks`
(`segdet.structures.cropped_masks.instance_mask_crops` reads either). An image that fits in
one tile is processed whole.

Test-time augmentation (TEST.AUG) is carried by the model, for whole images and tiles alike:
`Predictor.from_checkpoint(path, ["TEST.AUG.ENABLED", "True", "TEST.AUG.MIN_SIZES", "(288, 360, 432)"])`
(`segdet.modeling.test_time_augmentation`).

Engines: `engine="onnxruntime"` (or TEST.ENGINE) runs a semantic model's logits step in ONNX
Runtime on the CPU (`segdet.inference.onnx_engine`); everything else, tiles included, is the
same code either way.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from segdet.config.experiment import instances_enabled
from segdet.data.transforms.augmentation import apply_augmentations, build_augmentations
from segdet.errors import ConfigError, DataError
from segdet.inference.tiling import TiledSegmenter
from segdet.modeling.load import LoadedModel, load_model
from segdet.structures.instances import Instances


def as_rgb_image(image: np.ndarray, where: str = "image") -> np.ndarray:
    """An HxWx3 uint8 RGB array from RGB, RGBA, HxWx1 or gray HxW uint8; DataError otherwise."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise DataError(f"{where}: pixel type {array.dtype}; expected uint8 RGB (e.g. from segdet.utils.image_io."
                        "read_image)")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or min(array.shape[:2]) == 0:
        raise DataError(f"{where}: shape {array.shape}; expected HxWx3 RGB (or HxW gray, HxWx4 RGBA)")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]
    return np.ascontiguousarray(array)


def _to_cpu(value: Any) -> Any:
    if isinstance(value, (torch.Tensor, Instances)):
        return value.to("cpu")
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


class Predictor:
    """A model ready for inference on image arrays (eval mode, no gradients)."""

    def __init__(self, cfg=None, weights: str | None = None, opts: Sequence[str] = (), engine: str | None = None):
        """
        Args:
            cfg: the model's config (MODEL.*, INPUT.MIN/MAX_SIZE_TEST, TEST.TILE_*); None, or the
                path of a segdet checkpoint, for the config stored in the model file.
            weights: model file; default cfg.MODEL.WEIGHTS.
            opts: config overrides (KEY VALUE ...) of the stored config.
            engine: what runs the semantic logits step, "torch" or "onnxruntime" (semantic
                models only, on the CPU; `segdet.inference.onnx_engine`); default TEST.ENGINE.
        Raises:
            CheckpointError when there is no model file, it is unreadable or does not fit the
            config; ConfigError for a bad config, or engine "onnxruntime" for a model with instances.
        """
        if isinstance(cfg, (str, os.PathLike)):
            cfg, weights = None, weights or os.fspath(cfg)
        self._use(load_model(weights, cfg, opts), engine)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, engine: str | None = None) -> "Predictor":
        """A Predictor for a model that is already built and loaded (e.g. by `segdet.d2`, for a
        model trained inside detectron2): `loaded.model` takes and returns segdet's dicts."""
        predictor = cls.__new__(cls)
        predictor._use(loaded, engine)
        return predictor

    def _use(self, loaded: LoadedModel, engine: str | None = None) -> None:
        self.model = loaded.model
        self.metadata = loaded.metadata
        self.cfg = loaded.cfg
        self.weights = loaded.weights
        # A detectron2 config (segdet.d2) has no TEST.ENGINE: PyTorch.
        self.engine = engine or self.cfg.TEST.get("ENGINE", "torch")
        if self.engine != "torch":
            from segdet.inference.onnx_engine import use_engine  # onnxruntime only when asked for

            use_engine(self.model, self.engine)
        self.augmentations = build_augmentations(self.cfg, is_train=False)
        self.instances_on = instances_enabled(self.cfg)
        self.tile_batch_size = 4

    @classmethod
    def from_checkpoint(cls, path: str, opts: Sequence[str] = (), engine: str | None = None) -> "Predictor":
        """A Predictor from a segdet checkpoint alone: config and weights from the same file.

        Args:
            path: e.g. output/model_final.pth.
            opts: config overrides, e.g. ["MODEL.DEVICE", "cpu", "TEST.TILE_SIZE", "512"].
                MODEL.DEVICE defaults to "auto" (the device the model was trained on may be absent).
            engine: "torch" or "onnxruntime"; default TEST.ENGINE.
        """
        return cls(None, path, opts, engine)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def tile_size(self, tile_size: int | None = None) -> int:
        size = self.cfg.TEST.TILE_SIZE if tile_size is None else tile_size
        if size < 0:
            raise ConfigError(f"tile size {size}; expected > 0, or 0 for whole-image inference")
        return int(size)

    def tiled_segmenter(self, tile_size: int | None = None, overlap: float | None = None,
                        merge: str | None = None) -> TiledSegmenter | None:
        """The TiledSegmenter for these settings (config defaults), or None when tiling is off."""
        size = self.tile_size(tile_size)
        if size == 0:
            return None
        return TiledSegmenter.from_config(self.cfg, self.model, size, overlap, merge, self.tile_batch_size)

    def __call__(self, image: np.ndarray, tile_size: int | None = None, overlap: float | None = None,
                 merge: str | None = None, return_scores: bool = True) -> dict:
        """Predict one image.

        Args:
            image: HxWx3 uint8 RGB (or HxW gray, HxWx4 RGBA).
            tile_size, overlap, merge: override TEST.TILE_SIZE / TILE_OVERLAP / TILE_MERGE.
            return_scores: keep `sem_seg` (C x H x W scores) in the output.
        Returns:
            The output dict (ARCHITECTURE.md) at the image's size, tensors on the CPU.
        """
        return self.predict_batch([image], tile_size, overlap, merge, return_scores)[0]

    @torch.no_grad()
    def predict_batch(self, images: Sequence[np.ndarray], tile_size: int | None = None,
                      overlap: float | None = None, merge: str | None = None,
                      return_scores: bool = True) -> list[dict]:
        """Predict several images; same-size images go through the model together.

        Images of different sizes are run separately, since padding them to one size would
        change the predictions near their borders. Arguments as for `__call__`.
        """
        arrays = [as_rgb_image(im, f"image {i}") for i, im in enumerate(images)]
        tiler = self.tiled_segmenter(tile_size, overlap, merge)
        outputs: list[dict | None] = [None] * len(arrays)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, array in enumerate(arrays):
            h, w = array.shape[:2]
            if tiler is not None and not tiler.fits_one_tile(h, w):
                outputs[i] = tiler(array, return_scores=return_scores)
            else:
                by_size.setdefault((h, w), []).append(i)
        for indices in by_size.values():
            for i, out in zip(indices, self._predict_whole([arrays[i] for i in indices])):
                if not return_scores:
                    out.pop("sem_seg", None)
                outputs[i] = out
        return outputs  # type: ignore[return-value]

    def _predict_whole(self, arrays: list[np.ndarray]) -> list[dict]:
        inputs = []
        rng = np.random.default_rng(0)  # the test-time resize draws nothing; the API wants a generator
        for array in arrays:
            resized, _ = apply_augmentations(self.augmentations, array, rng)
            inputs.append({"image": torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1))),
                           "height": array.shape[0], "width": array.shape[1]})
        return [_to_cpu(out) for out in self.model(inputs)]
