"""One way to get a model ready for inference from a model file (and optionally a config).

    loaded = load_model("output/model_final.pth")             # config and classes from the file
    loaded = load_model(cfg=cfg)                              # cfg.MODEL.WEIGHTS, cfg's model
    loaded.model, loaded.metadata, loaded.cfg

The file is read once. The classes are the ones the file carries (its `metadata`), with the
config's overrides (`metadata_for_config`); a file without them takes the classes of the
config's datasets. A file that does not hold every tensor the model needs is refused: a
model with randomly initialized layers gives plausible-looking garbage. `Predictor`, the
export, `tools/train_net.py --eval-only` and the tools all load models through here.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from torch import nn

from segdet.checkpoint import SegdetCheckpointer, inference_state_dict, load_checkpoint_file
from segdet.config import load_config
from segdet.config.experiment import metadata_for_config
from segdet.structures.metadata import Metadata
from segdet.errors import CheckpointError, ConfigError, DataError
from segdet.modeling.build import build_model

logger = logging.getLogger(__name__)

# What the semantic path needs (export): the backbone and the semantic head.
SEMANTIC_PARTS = ("backbone.", "sem_seg_head.")


@dataclass
class LoadedModel:
    """A model in eval mode with the classes and the config it runs with."""

    model: nn.Module
    metadata: Metadata
    cfg: Any
    weights: str


def stored_config(checkpoint: dict, path: str, opts: Sequence[str] = ()):
    """The config a segdet model file was trained with, MODEL.DEVICE "auto" (the device it was
    trained on may be absent), then `opts`."""
    text = checkpoint.get("config")
    if not isinstance(text, str) or not text.strip():
        raise CheckpointError(
            f"model file {path} holds no config (it was not written by segdet's trainer); give the config "
            "it was trained with (Predictor(cfg, weights), or --config-file in the tools)"
        )
    return load_config(opts=["MODEL.DEVICE", "auto", *opts], text=text, source=f"config stored in model file {path}")


def model_metadata(cfg, checkpoint: dict, path: str) -> Metadata:
    """The classes of a model: from its file, else from the config's datasets; with the config's overrides."""
    stored = checkpoint.get("metadata")
    if stored is not None:
        if not isinstance(stored, dict):
            raise CheckpointError(f"model file {path}: its 'metadata' entry is a {type(stored).__name__}, "
                                  "expected a dict")
        try:
            return metadata_for_config(cfg, Metadata.from_dict(stored))
        except (DataError, TypeError) as e:
            raise CheckpointError(f"model file {path}: its class metadata is invalid: {e}") from None
    names = list(cfg.DATASETS.TEST or cfg.DATASETS.TRAIN)
    if not names:
        raise CheckpointError(
            f"model file {path} holds no class metadata (it was not written by segdet's trainer) and the config "
            "names no dataset to take the classes from: set DATASETS.TEST to the dataset the model was trained on"
        )
    from segdet.data.formats import register_from_config
    from segdet.data.resolve import resolve_metadata

    register_from_config(cfg)
    logger.info("Model file %s has no class metadata; using dataset '%s'", path, names[0])
    return resolve_metadata(cfg, names)


def check_weights_fit(model: nn.Module, state: dict, path: str, parts: Optional[Sequence[str]] = None) -> None:
    """Every tensor of the model (or of the parts named by their prefixes) must be in the file,
    with the model's shape."""
    wanted = {k: v for k, v in model.state_dict().items() if parts is None or k.startswith(tuple(parts))}
    missing = [k for k in wanted if k not in state]
    wrong = [k for k, v in wanted.items() if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)]
    if missing or wrong:
        what = "model" if parts is None else "semantic path"
        example = (missing or wrong)[:3]
        raise CheckpointError(
            f"model file {path} does not fit the configured model: it lacks {len(missing)} of the {len(wanted)} "
            f"tensors of the {what} and {len(wrong)} have another shape (e.g. {example}); use the config the model "
            "was trained with, or let the model file's own config be used"
        )


def load_model(weights: Optional[str] = None, cfg=None, opts: Sequence[str] = (), device: Optional[str] = None,
               parts: Optional[Sequence[str]] = None) -> LoadedModel:
    """Build a model for inference from a segdet model file.

    Args:
        weights: the model file; default cfg.MODEL.WEIGHTS.
        cfg: the model's config; None = the config stored in the file, with `opts`.
        opts: config overrides (KEY VALUE ...) when the stored config is used.
        device: MODEL.DEVICE to use instead of the config's (e.g. "cpu" for export).
        parts: load only the tensors of these parts (e.g. SEMANTIC_PARTS); None = all of them.
    Returns:
        LoadedModel(model in eval mode, metadata, frozen cfg with MODEL.WEIGHTS = the file, weights).
    Raises:
        CheckpointError: no file, an unreadable file, or one that does not fit the model.
        ConfigError: a bad config, or one that does not fit the file's classes.
    """
    path = weights or (cfg.MODEL.WEIGHTS if cfg is not None else "")
    if not path:
        raise CheckpointError("no model file given: set MODEL.WEIGHTS or give the model file")
    path = os.fspath(path)
    checkpoint = load_checkpoint_file(path)
    if checkpoint.get("engine") == "detectron2":
        raise CheckpointError(f"model file {path} was trained inside detectron2 (segdet.d2): predict with "
                              "tools/predict.py --engine detectron2, or segdet.d2.load_detectron2_model")
    cfg = stored_config(checkpoint, path, opts) if cfg is None else cfg
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.WEIGHTS = path
    if device is not None:
        cfg.MODEL.DEVICE = device
    cfg.freeze()
    metadata = model_metadata(cfg, checkpoint, path)
    try:
        model = build_model(cfg, metadata)
    except ConfigError as e:
        raise ConfigError(f"the config does not fit model file {path}: {e}") from None
    state = inference_state_dict(checkpoint, path)
    check_weights_fit(model, state, path, parts)
    SegdetCheckpointer(model).load_state(state, path)
    return LoadedModel(model=model.eval(), metadata=metadata, cfg=cfg, weights=path)
