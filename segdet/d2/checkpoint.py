"""detectron2's DetectionCheckpointer with segdet's rules for model files: written atomically,
read as data only (`torch.load(..., weights_only=True)`), and carrying what inference needs.

A file it writes holds detectron2's entries (`model`, `optimizer`, `scheduler`, `iteration`,
the trainer's state) plus `engine: "detectron2"`, `metadata` (the classes) and `config` (the
YAML of the config), so that `segdet.d2.load_detectron2_model(file)` needs nothing else.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import torch
from detectron2.checkpoint import DetectionCheckpointer

from segdet.checkpoint import load_checkpoint_file
from segdet.errors import CheckpointError
from segdet.utils.files import atomic_write

ENGINE = "detectron2"


def inference_data(cfg, metadata) -> dict[str, Any]:
    """The entries of a model file that inference reads besides the weights."""
    return {"engine": ENGINE, "metadata": metadata.to_dict(), "config": cfg.dump()}


class SegdetCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer(model, save_dir, *, extra_data=None, **checkpointables)."""

    def __init__(self, model, save_dir: str = "", *, extra_data: Optional[dict] = None, **checkpointables):
        super().__init__(model, save_dir, **checkpointables)
        self.extra_data = dict(extra_data or {})

    def save(self, name: str, **kwargs: Any) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        data.update(self.extra_data)
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", path)
        atomic_write(path, lambda tmp: torch.save(data, tmp))
        self.tag_last_checkpoint(basename)

    def _load_file(self, filename: str) -> dict:
        if filename.endswith((".pkl", ".pyth")):
            raise CheckpointError(
                f"model file {filename}: pickled files (.pkl, .pyth) can run code when loaded, and segdet loads "
                "model files as data only; convert it to a .pth state_dict (torch.save of its tensors)"
            )
        return super()._load_file(filename)

    def _torch_load(self, f: str) -> dict:
        return load_checkpoint_file(f)
