"""Export a model's semantic path (RGB image -> class scores) to ONNX or TorchScript.

Both meta-architectures export the same graph: backbone + semantic head, with the pixel
normalization, the padding to a multiple of 32, the class weight correction, the softmax and
the choice of the class inside it (the model's own `postprocess.class_scores`), so a deployment feeds raw RGB and reads class probabilities. A PanopticFPN
exports its semantic path only (the instance branch's RPN, RoI heads and NMS are left out).

The exported graph:
    input   `image`: float32 N x 3 x H x W, RGB, values 0..255, any N, H, W (H and W are
            padded at the bottom/right to a multiple of 32, at least 64, inside the graph, as
            the PyTorch model does, and the outputs are cropped back to H x W).
    outputs `sem_seg`: float32 N x C x H x W class probabilities, 0 for ignore classes;
            `segmentation_image`: int64 N x H x W class ids, never an ignore class;
            `segmentation_confidence`: float32 N x H x W probability of the chosen class.
A JSON file `<output>.json` next to the model says the same, with the class names and colors.

`onnx_logits_model` converts only a model's logits step (backbone + semantic head, on the padded
batch) in memory: what the ONNX Runtime engine runs (`segdet.inference.onnx_engine`).
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segdet.utils.files import atomic_write, write_json
from segdet.structures.metadata import Metadata
from segdet.errors import CheckpointError, ExportError
from segdet.modeling.load import SEMANTIC_PARTS, load_model
from segdet.modeling.meta_arch import padded_size
from segdet.modeling.postprocess import class_scores, ignore_class_mask, segmentation_from_scores

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
INPUT_NAME = "image"
OUTPUT_NAMES = ("sem_seg", "segmentation_image", "segmentation_confidence")
# The example batch the exporters trace. Batch 2 and sizes that are not multiples of 32 keep
# torch.export from specializing the batch size to 1 or the padding to 0; its values do not
# matter. Every FPN level is larger than 1 pixel at this size.
TRACE_SHAPE = (2, 3, 200, 232)
# Largest difference of the probabilities an export may have from PyTorch (float32 round-off
# of a different operator order is about 1e-6).
MAX_ABS_DIFF = 1e-3


class SemanticExportModule(nn.Module):
    """The semantic path of a SemanticSegmentor or PanopticFPN as one tensor-in, tensors-out module.

    Args:
        model: a segdet model with `backbone`, `sem_seg_head`, `pixel_mean`, `pixel_std`,
            `ignore_class_ids` and `size_divisibility` (both meta-architectures have them).
        with_segmentation: also return segmentation_image and segmentation_confidence.
        num_classes: number of classes C; default: `model.metadata.num_classes`, else the
            semantic head predictor's output channels.

    forward(image): image float32 (N, 3, H, W), RGB 0..255, any H, W. Returns
        (sem_seg (N, C, H, W),) or (sem_seg, segmentation_image (N, H, W) int64,
        segmentation_confidence (N, H, W)) as `segdet.modeling.postprocess` computes them.
    """

    def __init__(self, model: nn.Module, with_segmentation: bool = True, num_classes: Optional[int] = None):
        super().__init__()
        self.backbone = model.backbone
        self.sem_seg_head = model.sem_seg_head
        self.with_segmentation = with_segmentation
        self.size_divisibility = int(getattr(model, "size_divisibility", 32) or 1)
        if num_classes is None:
            metadata = getattr(model, "metadata", None)
            predictor = getattr(self.sem_seg_head, "predictor", None)
            if metadata is not None:
                num_classes = metadata.num_classes
            elif predictor is not None:
                num_classes = predictor.out_channels
            else:
                raise ValueError("num_classes is needed: the model has no metadata and no sem_seg_head.predictor")
        self.num_classes = int(num_classes)
        self.ignore_class_ids = sorted(set(int(i) for i in model.ignore_class_ids))
        # Persistent buffers, so that a TorchScript file carries them.
        self.register_buffer("pixel_mean", model.pixel_mean.detach().clone().float().view(1, -1, 1, 1))
        self.register_buffer("pixel_std", model.pixel_std.detach().clone().float().view(1, -1, 1, 1))
        self.register_buffer("ignore_mask", ignore_class_mask(self.num_classes, self.ignore_class_ids))
        # The class weight correction the model applies (its training class weights and power).
        offsets = model.class_score_offsets()
        self.register_buffer("score_offsets", torch.zeros(self.num_classes, 1, 1) if offsets is None
                             else offsets.detach().clone().cpu())

    def forward(self, image: torch.Tensor):
        image = image.to(torch.float32)
        height, width = image.shape[-2], image.shape[-1]
        x = (image - self.pixel_mean) / self.pixel_std
        padded_h = padded_size(height, self.size_divisibility)
        padded_w = padded_size(width, self.size_divisibility)
        # Zeros after normalization, as the model's pad_and_stack pads the normalized images.
        x = F.pad(x, (0, padded_w - width, 0, padded_h - height))
        logits = self.sem_seg_head(self.backbone(x))[:, :, :height, :width]
        scores = class_scores(logits, self.ignore_mask, self.score_offsets)
        if not self.with_segmentation:
            return (scores,)
        segmentation, confidence = segmentation_from_scores(scores, self.ignore_class_ids)
        return scores, segmentation, confidence

    @property
    def output_names(self) -> tuple[str, ...]:
        return OUTPUT_NAMES if self.with_segmentation else OUTPUT_NAMES[:1]


@dataclass
class ExportResult:
    """What export_model wrote and measured."""

    path: str
    info_path: str
    format: str
    max_abs_diff: float = float("nan")
    segmentation_mismatch: float = float("nan")
    info: dict[str, Any] = field(default_factory=dict)


def load_model_for_export(cfg, weights: Optional[str] = None) -> tuple[nn.Module, Metadata]:
    """The config's model on the CPU in eval mode with a segdet checkpoint's semantic path loaded
    (`segdet.modeling.load.load_model`; the instance branch, if any, need not be in the file).

    Args:
        cfg: the model's config.
        weights: the checkpoint; default cfg.MODEL.WEIGHTS.
    Returns:
        (model, metadata): the classes of the checkpoint (else of the config's datasets), with the
        config's overrides.
    """
    if not (weights or cfg.MODEL.WEIGHTS):
        raise CheckpointError("no model file to export: give a trained checkpoint as MODEL.WEIGHTS (or --weights)")
    loaded = load_model(weights, cfg, device="cpu", parts=SEMANTIC_PARTS)
    return loaded.model, loaded.metadata


def _trace_input() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, TRACE_SHAPE, generator=generator).to(torch.float32)


def onnx_program(module: nn.Module, example: torch.Tensor, dynamic_shapes: dict, output_names: list[str],
                 opset: Optional[int] = None):
    """`module` converted by torch's default ONNX exporter (torch.export + onnxscript), in memory:
    an ONNXProgram (`.save(path)`, `.model_proto`). `dynamic_shapes` as torch.export takes them,
    for the forward argument `image`."""
    try:
        import onnx  # noqa: F401  what the exporter writes
        import onnxscript  # noqa: F401  torch's exporter needs it; say so before it fails deep inside
    except ImportError as e:
        raise ExportError(f"ONNX export needs the packages onnx and onnxscript ({e}); "
                          "install them with: pip install 'segdet[export]'") from None
    with torch.no_grad():
        return torch.onnx.export(
            module.eval(), (example,), None, dynamo=True, input_names=[INPUT_NAME], output_names=output_names,
            opset_version=opset, dynamic_shapes={INPUT_NAME: dynamic_shapes}, verbose=False,
        )


def export_onnx(module: SemanticExportModule, path: str, opset: Optional[int] = None) -> int:
    """Write `module` to `path` as ONNX with dynamic batch, height and width (atomically).

    Uses torch's default exporter (torch.export + onnxscript). Returns the ONNX opset.
    """
    dim = torch.export.Dim.DYNAMIC
    start = time.perf_counter()
    program = onnx_program(module, _trace_input(), {0: dim, 2: dim, 3: dim}, list(module.output_names), opset)
    opsets: list[int] = []

    def write(tmp: str) -> None:
        import onnx  # present: onnx_program checked it

        # One self-contained file (weights inside): models of this kind stay far below
        # protobuf's 2 GB limit, and a single file is what small devices want.
        program.save(tmp, external_data=False)
        proto = onnx.load(tmp, load_external_data=False)
        dims = proto.graph.input[0].type.tensor_type.shape.dim
        fixed = [i for i in (0, 2, 3) if not dims[i].dim_param]
        if fixed:
            raise ExportError(f"the ONNX exporter fixed input dimensions {fixed} of {path}; expected dynamic N, H, W")
        opsets.extend(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))

    atomic_write(path, write)
    logger.info("Exported ONNX (opset %d) to %s in %.1f s", opsets[0], path, time.perf_counter() - start)
    return opsets[0]


class SemanticLogitsModule(nn.Module):
    """A model's `semantic_logits` step alone (backbone + semantic head): (N, 3, H, W) normalized
    images, H and W already padded by the model (`pad_and_stack`) -> (N, C, H, W) class logits.
    What the ONNX Runtime engine runs (`segdet.inference.onnx_engine`); the rest of the semantic
    path stays the model's own."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.backbone = model.backbone
        self.sem_seg_head = model.sem_seg_head
        self.size_divisibility = int(getattr(model, "size_divisibility", 32) or 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.sem_seg_head(self.backbone(image))


def onnx_logits_model(model: nn.Module, opset: Optional[int] = None) -> bytes:
    """The serialized ONNX model of `model`'s semantic logits step (`SemanticLogitsModule`), any batch
    size and any padded size: H and W are declared multiples of the model's size divisibility (at
    least twice it, as `padded_size` makes them), so the exporter keeps the FPN levels aligned."""
    module = SemanticLogitsModule(model).eval()
    d = module.size_divisibility
    # The traced batch: 2 and sizes of 6 x 7 blocks keep the exporter from specializing them.
    example = torch.zeros(2, 3, 6 * d, 7 * d)
    dims = {0: torch.export.Dim.DYNAMIC, 2: d * torch.export.Dim("h_blocks", min=2),
            3: d * torch.export.Dim("w_blocks", min=2)}
    start = time.perf_counter()
    proto = onnx_program(module, example, dims, ["logits"], opset).model_proto
    logger.info("Converted the semantic logits step to ONNX in %.1f s", time.perf_counter() - start)
    return proto.SerializeToString()


def export_torchscript(module: SemanticExportModule, path: str) -> None:
    """Write `module` to `path` as a traced TorchScript module (atomically); any N, H, W."""
    module = module.eval()
    start = time.perf_counter()
    with warnings.catch_warnings(), torch.no_grad():
        # torch.jit is deprecated in favor of torch.export, but TorchScript is what many C++
        # and mobile runtimes load; the user asked for it.
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        # group_norm's "more than 1 value per channel" check reads a size as a Python bool: a check,
        # not part of the computation, so the trace stays valid for other sizes.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.nn\.functional")
        traced = torch.jit.trace(module, (_trace_input(),), check_trace=False)
        atomic_write(path, lambda tmp: torch.jit.save(traced, tmp))
    logger.info("Exported TorchScript to %s in %.1f s", path, time.perf_counter() - start)


def export_info(metadata: Metadata, module: SemanticExportModule, fmt: str, opset: Optional[int] = None,
                weights: str = "") -> dict[str, Any]:
    """What a deployment needs to use the exported model: classes, input format, outputs."""
    c = module.num_classes
    outputs = [{"name": "sem_seg", "dtype": "float32", "shape": ["N", c, "H", "W"],
                "description": "class probabilities (softmax, with the class weight correction the model was "
                               "configured with); ignore classes have probability 0"}]
    if module.with_segmentation:
        outputs += [
            {"name": "segmentation_image", "dtype": "int64", "shape": ["N", "H", "W"],
             "description": "class id of the most probable class; never an ignore class"},
            {"name": "segmentation_confidence", "dtype": "float32", "shape": ["N", "H", "W"],
             "description": "probability of the chosen class"},
        ]
    info: dict[str, Any] = {
        "format": fmt,
        "class_names": list(metadata.class_names),
        "class_colors": [list(col) for col in metadata.class_colors],
        "ignore_class_ids": list(module.ignore_class_ids),
        "thing_class_ids": list(metadata.thing_class_ids),
        "num_classes": c,
        "input": {
            "name": INPUT_NAME, "dtype": "float32", "shape": ["N", 3, "H", "W"], "layout": "NCHW",
            "color": "RGB", "value_range": [0, 255],
            "normalization": "inside the model (pixel mean and std below are applied by it)",
            "pixel_mean": module.pixel_mean.flatten().tolist(), "pixel_std": module.pixel_std.flatten().tolist(),
            "size_divisibility": module.size_divisibility,
            "padding": f"any H and W: padded inside the model to a multiple of {module.size_divisibility} "
                       f"(at least {2 * module.size_divisibility}) and cropped back; such sizes need no padding",
        },
        "outputs": outputs,
        "output_names": [o["name"] for o in outputs],
        # The scores are divided by exp(score_offsets) (each class's training weight to the power of
        # MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION) before they are normalized; all 0 without correction.
        "score_offsets": module.score_offsets.flatten().tolist(),
        "torch_version": torch.__version__,
        "weights": weights,
    }
    if opset is not None:
        info["opset"] = opset
    return info


def load_exported(path: str, fmt: str, threads: Optional[int] = None) -> Callable[[torch.Tensor], list[np.ndarray]]:
    """An exported file ready to run: a function of `image` (N, 3, H, W float32) returning its
    outputs as numpy arrays (onnxruntime on the CPU, or torch.jit.load). `threads`: onnxruntime's
    intra-op threads (default: its own choice); TorchScript uses torch's."""
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise ExportError("running an ONNX export needs onnxruntime: pip install 'segdet[export]'") from None
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return lambda image: list(session.run(None, {INPUT_NAME: image.numpy()}))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        loaded = torch.jit.load(path, map_location="cpu")

    def run(image: torch.Tensor) -> list[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in loaded(image)]

    return run


def run_exported(path: str, fmt: str, image: torch.Tensor) -> list[np.ndarray]:
    """Run an exported file once on `image` (N, 3, H, W float32)."""
    return load_exported(path, fmt)(image)


def compare_exported(module: SemanticExportModule, path: str, fmt: str, image: torch.Tensor) -> tuple[float, float]:
    """Max abs difference of the scores between PyTorch and the exported file, and the fraction
    of pixels whose segmentation_image differs (nan without that output)."""
    with torch.no_grad():
        expected = [t.numpy() for t in module.eval()(image)]
    got = run_exported(path, fmt, image)
    diff = float(np.abs(got[0] - expected[0]).max())
    mismatch = float((got[1] != expected[1]).mean()) if len(expected) > 1 else float("nan")
    return diff, mismatch


def export_model(cfg, output: str, fmt: str = "onnx", weights: Optional[str] = None,
                 check_size: tuple[int, int] = (512, 512), with_segmentation: bool = True,
                 opset: Optional[int] = None) -> ExportResult:
    """Export the semantic path of the config's trained model and check it on a random image.

    Args:
        cfg: the model's config; cfg.MODEL.WEIGHTS (or `weights`) is a segdet checkpoint.
        output: the model file to write; `<output>.json` gets the deployment info.
        fmt: "onnx" or "torchscript".
        check_size: (height, width) of the random image the export is checked on.
        with_segmentation: also output segmentation_image and segmentation_confidence.
        opset: ONNX opset (default: the exporter's).
    Returns:
        ExportResult with the paths, the info and the measured differences.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; expected one of {list(FORMATS)}")
    model, metadata = load_model_for_export(cfg, weights)
    module = SemanticExportModule(model, with_segmentation=with_segmentation, num_classes=metadata.num_classes)
    used_opset = None
    if fmt == "onnx":
        used_opset = export_onnx(module, output, opset)
    else:
        export_torchscript(module, output)
    info = export_info(metadata, module, fmt, used_opset, weights=os.path.abspath(weights or cfg.MODEL.WEIGHTS))
    info_path = output + ".json"
    write_json(info, info_path)
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (1, 3, *check_size), generator=generator).to(torch.float32)
    diff, mismatch = compare_exported(module, output, fmt, image)
    if not diff <= MAX_ABS_DIFF:
        logger.warning("%s differs from the PyTorch model by up to %.3g in sem_seg (more than %g)", output, diff,
                       MAX_ABS_DIFF)
    return ExportResult(path=output, info_path=info_path, format=fmt, max_abs_diff=diff,
                        segmentation_mismatch=mismatch, info=info)
