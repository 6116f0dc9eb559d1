"""A model trained inside detectron2, ready for segdet's inference (Predictor, tiles, writers).

    loaded = load_detectron2_model("output/d2_demo/model_final.pth")
    predictor = segdet.Predictor.from_loaded(loaded)
    predict_files(predictor, ["photos/"], "pred/")     # what tools/predict.py --engine detectron2 runs

The model file carries its config and classes (segdet.d2's checkpointer writes them).
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import torch
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn
from torchvision.models.detection.image_list import ImageList

from segdet.checkpoint import load_checkpoint_file
from segdet.config.experiment import metadata_for_config
from segdet.d2.checkpoint import ENGINE
from segdet.d2.config import load_config
from segdet.d2.convert import ThingIds, to_segdet_output
from segdet.errors import CheckpointError, DataError
from segdet.modeling.load import LoadedModel
from segdet.modeling.meta_arch import SemanticSegmentor
from segdet.structures.metadata import Metadata


class SegdetOutputs(nn.Module):
    """A segdet.d2 meta-architecture with segdet's inference interface: outputs with class ids (its
    instances and panoptic segments converted at this boundary), and the semantic path that
    `segdet.inference.tiling.TiledSegmenter` calls."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.things = ThingIds(model.metadata.thing_class_ids)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def ignore_class_ids(self) -> list[int]:
        return self.model.ignore_class_ids

    def forward(self, batched_inputs: list[dict]) -> list[dict]:
        return [to_segdet_output(out, self.things) for out in self.model(batched_inputs)]

    def preprocess_image(self, batched_inputs: list[dict]) -> ImageList:
        images = self.model.preprocess_image(batched_inputs)
        return ImageList(images.tensor, list(images.image_sizes))

    def semantic_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.semantic_logits(images)

    def semantic_scores(self, logits: torch.Tensor, image_size, height: int, width: int) -> torch.Tensor:
        return self.model.semantic_scores(logits, image_size, height, width)

    # The scores of a batch as segdet's models give them (what tiles call), without test-time
    # augmentation: segdet.d2's meta-architectures do not carry TEST.AUG.
    test_time_augmentation = None
    output_size = staticmethod(SemanticSegmentor.output_size)
    batch_scores = SemanticSegmentor.batch_scores


def _stored_metadata(checkpoint: dict, path: str) -> Metadata:
    try:
        return Metadata.from_dict(checkpoint["metadata"])
    except (KeyError, TypeError, DataError) as e:
        raise CheckpointError(f"model file {path}: no valid class metadata ({e})") from None


def load_detectron2_model(weights: str, config_file: Optional[str] = None, opts: Sequence[str] = (),
                          device: Optional[str] = None) -> LoadedModel:
    """Build and load a model that segdet.d2's trainer saved, for segdet's inference.

    Args:
        weights: the model file (e.g. OUTPUT_DIR/model_final.pth).
        config_file: the model's config; None = the config stored in the file.
        opts: KEY VALUE overrides.
        device: MODEL.DEVICE to use instead of the config's.
    Returns:
        LoadedModel(SegdetOutputs in eval mode, metadata, frozen cfg, weights).
    Raises:
        CheckpointError when the file is missing, unreadable, not written by segdet.d2 or does not fit.
    """
    path = os.fspath(weights)
    checkpoint = load_checkpoint_file(path)
    if checkpoint.get("engine") != ENGINE:
        raise CheckpointError(f"model file {path} was not written by segdet.d2's trainer; for a model of segdet's "
                              "own trainer leave out --engine detectron2")
    if config_file:
        cfg = load_config(config_file, opts)
    else:
        cfg = load_config(text=checkpoint.get("config") or "", opts=opts, source=f"config stored in {path}")
    metadata = metadata_for_config(cfg, _stored_metadata(checkpoint, path))
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.WEIGHTS = path
    # The model file's classes, not a dataset's: the heads need no catalog.
    cfg.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS = list(metadata.ignore_class_ids)
    cfg.MODEL.DEVICE = device or ("cuda" if cfg.MODEL.DEVICE == "cuda" and torch.cuda.is_available() else "cpu")
    cfg.freeze()
    model = META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)(cfg, metadata=metadata)
    model.to(torch.device(cfg.MODEL.DEVICE))
    try:
        model.load_state_dict(checkpoint["model"])
    except (KeyError, RuntimeError) as e:
        raise CheckpointError(f"model file {path} does not fit its config: {str(e).splitlines()[0]}") from None
    return LoadedModel(model=SegdetOutputs(model).eval(), metadata=metadata, cfg=cfg, weights=path)
