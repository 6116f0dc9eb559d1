"""Model files: written atomically, loaded as data only (`weights_only=True`).

A segdet checkpoint is a dict with `model` (state_dict), `metadata` (the classes, so that
inference needs nothing else), `config` (YAML text) and, from the trainer, `optimizer`,
`scheduler`, `iteration` and `rng_state`. MODEL.WEIGHTS may also name a torchvision
state_dict: an ImageNet ResNet or a Mask R-CNN saved by torchvision.
"""
from __future__ import annotations

import logging
import os
import pickle
import random
import re
import warnings
from typing import Any

import numpy as np
import torch
from fvcore.common.checkpoint import Checkpointer

from segdet.errors import CheckpointError
from segdet.utils.files import atomic_write, atomic_write_text

logger = logging.getLogger(__name__)


def atomic_torch_save(data: Any, path: str) -> None:
    """torch.save through `atomic_write`: a crash never leaves a half-written model file under
    the final name."""
    atomic_write(path, lambda tmp: torch.save(data, tmp))


def load_checkpoint_file(path: str) -> dict[str, Any]:
    """Load a model file as data (tensors, numbers, strings only); CheckpointError when it cannot be."""
    if not path:
        raise CheckpointError("no model file given (MODEL.WEIGHTS is empty)")
    if not os.path.isfile(path):
        raise CheckpointError(f"model file not found: {path}")
    try:
        with warnings.catch_warnings():
            # A pickle of another protocol is refused or read all the same; its warning would
            # only stand around the one-line error.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise CheckpointError(f"model file {path} is corrupt or not a PyTorch file: {e}") from None
        raise CheckpointError(
            f"model file {path} holds more than weights (Python objects that could run code), "
            f"so it is not loaded. Save a state_dict instead. ({str(e).splitlines()[0]})"
        ) from None
    except Exception as e:  # the unpickler reports damage in many ways (EOF, IndexError, zip errors)
        raise CheckpointError(f"model file {path} is corrupt or not a PyTorch file: {type(e).__name__}: {e}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"model file {path} holds a {type(data).__name__}, expected a dict of weights")
    return data


def to_segdet_state_dict(data: dict[str, Any], path: str = "<weights>") -> dict[str, Any]:
    """The `model` state_dict of a segdet checkpoint, or a torchvision state_dict renamed to
    segdet's parameter names (the instance branch already uses torchvision's names)."""
    if "model" in data and isinstance(data["model"], dict):
        state = data["model"]
        if state and all(k.startswith("module.") for k in state):  # saved from a DistributedDataParallel
            state = {k[len("module."):]: v for k, v in state.items()}
        return state
    if not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"model file {path} is neither a segdet checkpoint nor a state_dict of tensors")
    keys = list(data)
    if any(k.startswith("layer1.") for k in keys) and "conv1.weight" in data:
        logger.info("%s looks like a torchvision ResNet (ImageNet) state_dict: loading it into the backbone", path)
        return {f"backbone.body.{k}": v for k, v in data.items() if not k.startswith("fc.")}
    if any(k.startswith("backbone.body.") for k in keys):
        logger.info("%s looks like a torchvision detection model state_dict", path)
        return dict(data)
    raise CheckpointError(
        f"model file {path}: unrecognized parameter names (e.g. {keys[:3]}); expected a segdet checkpoint, "
        "a torchvision ResNet or a torchvision Mask R-CNN state_dict"
    )


def _tagged_name(folder: str) -> str:
    tag = os.path.join(folder, "last_checkpoint")
    if not os.path.isfile(tag):
        return ""
    with open(tag) as f:
        return f.read().strip()


def inference_state_dict(data: dict[str, Any], path: str = "<weights>") -> dict[str, Any]:
    """The weights a model file is used with for inference: the exponential moving average of the
    weights when the run kept one (MODEL.EMA), else its `model` state_dict (`to_segdet_state_dict`)."""
    ema = data.get("ema")
    if isinstance(ema, dict) and isinstance(ema.get("weights"), dict):
        return ema["weights"]
    return to_segdet_state_dict(data, path)


def last_checkpoint(folder: str) -> str | None:
    """The model file `<folder>/last_checkpoint` names (what --resume continues from), or None."""
    name = _tagged_name(folder)
    path = os.path.join(folder, name)
    return path if name and os.path.isfile(path) else None


_PERIODIC_NAME = re.compile(r"^model_(\d+)\.pth$")
_FINAL_NAME = "model_final.pth"


def resume_candidates(folder: str) -> list[str]:
    """The model files --resume may continue from, newest first; the caller falls back along the
    list when a file does not load.

    The file `last_checkpoint` names comes first, except for a `model_<iteration>.pth` written
    after it with a later iteration (a kill between saving a file and naming it); then the
    other `model_<iteration>.pth` by iteration, and `model_final.pth`. `model_best.pth` is
    never one: it is not where training stopped.
    """
    if not os.path.isdir(folder):
        return []
    periodic = sorted(((int(m.group(1)), name) for name in os.listdir(folder)
                       if (m := _PERIODIC_NAME.match(name))), reverse=True)
    names = [name for _, name in periodic]
    if os.path.isfile(os.path.join(folder, _FINAL_NAME)):
        names.append(_FINAL_NAME)
    tagged = _tagged_name(folder)
    if tagged not in names:
        if tagged:
            logger.warning("last_checkpoint in %s names %s, which is missing", folder, tagged)
        return [os.path.join(folder, name) for name in names]
    tagged_iter = dict((name, it) for it, name in periodic).get(tagged, -1)
    tagged_time = os.stat(os.path.join(folder, tagged)).st_mtime_ns
    newer = [name for it, name in periodic
             if it > tagged_iter and os.stat(os.path.join(folder, name)).st_mtime_ns > tagged_time]
    ordered = newer + [tagged] + [name for name in names if name != tagged and name not in newer]
    return [os.path.join(folder, name) for name in ordered]


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch random states, as tensors and numbers (loadable with weights_only)."""
    np_state = np.random.get_state()
    return {
        "python": list(random.getstate()[1]),
        "python_gauss": random.getstate()[2],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_gauss": (int(np_state[3]), float(np_state[4])),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate((3, tuple(state["python"]), state["python_gauss"]))
    has_gauss, cached = state["numpy_gauss"]
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         has_gauss, cached))
    torch.set_rng_state(state["torch"])


class SegdetCheckpointer(Checkpointer):
    """fvcore's Checkpointer with atomic writes, weights-only loading and torchvision state_dicts.

    Mismatched shapes (e.g. a head for another number of classes) are skipped and reported,
    as are missing and unexpected parameters.
    """

    def __init__(self, model: torch.nn.Module, save_dir: str = "", *, save_to_disk: bool = True,
                 extra_data: dict[str, Any] | None = None, **checkpointables: Any):
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        self.logger = logger  # segdet's logger, so loading reports reach the console and log.txt
        # Saved in every file, e.g. metadata and config.
        self.extra_data = dict(extra_data or {})
        # The iteration of the last file saved for --resume (None: none yet).
        self.last_saved_iteration: int | None = None

    def save(self, name: str, tag_last: bool = True, **kwargs: Any) -> None:
        """Write `<save_dir>/<name>.pth` atomically; `tag_last` makes it the file --resume uses."""
        if not self.save_dir or not self.save_to_disk:
            return
        data: dict[str, Any] = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(self.extra_data)
        data.update(kwargs)
        path = os.path.join(self.save_dir, f"{name}.pth")
        atomic_torch_save(data, path)
        self.logger.info("Saved checkpoint %s", path)
        if tag_last:
            self.tag_last_checkpoint(f"{name}.pth")
            self.last_saved_iteration = kwargs.get("iteration")

    def resume(self) -> dict[str, Any] | None:
        """Load the newest checkpoint of save_dir that loads (`resume_candidates`); a newer file
        that does not (cut short, damaged) is passed over with a warning. None: there is none."""
        for path in resume_candidates(self.save_dir):
            try:
                data = self.load(path)
            except CheckpointError as e:
                self.logger.warning("Cannot resume from %s (%s); trying the previous checkpoint", path, e)
                continue
            return data
        return None

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        atomic_write_text(last_filename_basename, os.path.join(self.save_dir, "last_checkpoint"))

    def load(self, path: str, checkpointables: list[str] | None = None) -> dict[str, Any]:
        if not path:
            self.logger.info("No weights given: the model starts from random initialization")
            return {}
        if not os.path.isfile(path):
            raise CheckpointError(f"model file not found: {path}")
        return super().load(path, checkpointables)

    def load_state(self, state: dict[str, Any], path: str = "<weights>") -> Any:
        """Load a state_dict already read from `path` (`to_segdet_state_dict`) into the model."""
        self.logger.info("Loading weights from %s", path)
        return self._load_model({"model": state})

    def _load_file(self, f: str) -> dict[str, Any]:
        data = load_checkpoint_file(f)
        state = to_segdet_state_dict(data, f)
        if state is data:
            return {"model": state}
        data = dict(data)
        data["model"] = state
        return data

    def _load_model(self, checkpoint: Any):
        incompatible = super()._load_model(checkpoint)
        total = len(self.model.state_dict())
        skipped = {k for k, *_ in incompatible.incorrect_shapes} | set(incompatible.missing_keys)
        self.logger.info("Loaded %d of the model's %d tensors from the checkpoint", total - len(skipped), total)
        return incompatible
