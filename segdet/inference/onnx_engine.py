"""ONNX Runtime as the engine of a semantic model's logits step (TEST.ENGINE "onnxruntime").

    use_engine(model, "onnxruntime")    # model.semantic_logits now runs in ONNX Runtime

The backbone and semantic head are exported to ONNX in memory (`segdet.export.onnx_logits_model`,
any batch and padded size) and run by an `onnxruntime.InferenceSession` on the CPU, with torch's
intra-op thread count. Only `semantic_logits` changes: preprocessing, the scores with the class
weight correction, the segmentation, tiling and the writers stay the model's own, so whole-image
prediction, tiles and evaluation all go through it alike. A PanopticFPN's instance branch reads
the backbone's features itself: the engine covers semantic models only.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from segdet.errors import ConfigError

logger = logging.getLogger(__name__)

ENGINES = ("torch", "onnxruntime")


class OnnxRuntimeLogits:
    """`semantic_logits` of a model, run by ONNX Runtime: a callable of the padded (N, 3, H, W)
    float32 batch returning the (N, C, H, W) logits as a torch tensor on the batch's device."""

    def __init__(self, model: nn.Module, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("TEST.ENGINE onnxruntime: the package onnxruntime is not installed; "
                              "pip install onnxruntime (or pip install 'segdet[export]')") from None
        from segdet.export import onnx_logits_model

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        # Waiting threads sleep instead of spinning: next to the writer threads and other work on
        # the CPU, spinning threads take the cores from those with work (libgomp's do the same,
        # BENCHMARKS.md "Threads under load"; measured here: 1.4-1.5x faster at a load of 6).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(onnx_logits_model(model), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        # ONNX Runtime reads C-contiguous float32 (a channels-last batch is copied).
        array = np.ascontiguousarray(images.detach().to("cpu", torch.float32).numpy())
        (logits,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(logits).to(images.device)


def use_engine(model: nn.Module, engine: str) -> nn.Module:
    """Run `model`'s logits step with `engine` ("torch" or "onnxruntime"); returns the model.

    "onnxruntime" moves the model to the CPU (the engine's device) and converts it once, which
    takes seconds. Raises ConfigError for an unknown engine, a model with instances, or a missing
    onnxruntime.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r}; expected one of {list(ENGINES)}")
    if not hasattr(model, "logits_engine"):
        if engine == "torch":
            return model
        raise ConfigError(f"TEST.ENGINE onnxruntime: {type(model).__name__} has no replaceable logits step "
                          "(segdet's SemanticSegmentor has); use TEST.ENGINE torch")
    if engine == "torch":
        model.logits_engine = None
        return model
    if getattr(model, "has_instances", False):
        raise ConfigError(f"TEST.ENGINE onnxruntime covers semantic models only, and {type(model).__name__} has "
                          "instances (MODEL.MASK_ON); use TEST.ENGINE torch")
    model.logits_engine = None  # convert the PyTorch step, not a previous engine
    model.to("cpu")
    model.logits_engine = OnnxRuntimeLogits(model)
    logger.info("Semantic logits step on ONNX Runtime (CPU, %d threads)",
                model.logits_engine.session.get_session_options().intra_op_num_threads)
    return model
