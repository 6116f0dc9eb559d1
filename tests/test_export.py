"""Export of the semantic path to ONNX (run with onnxruntime) and TorchScript, checked against the
PyTorch model's own output dicts at input sizes other than the one the exporter traced."""
import dataclasses
import math
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from segdet.checkpoint import SegdetCheckpointer, atomic_torch_save
from segdet.config import load_config
from segdet.data.catalog import DatasetCatalog, MetadataCatalog, register_dataset
from segdet.errors import CheckpointError
from segdet.export import OUTPUT_NAMES, TRACE_SHAPE, SemanticExportModule, export_model, load_model_for_export
from segdet.modeling import PanopticFPN, SemanticSegmentor, build_model
from segdet.modeling.meta_arch import pad_and_stack, padded_size
from tests.modeling.test_meta_arch import METADATA, tiny_cfg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IGNORE = METADATA.ignore_class_ids[0]
# (batch, height, width): multiples of 32 (no padding), and an odd size below 64 (padded to 64x96);
# neither is the traced size.
SIZES = [(2, 64, 96), (1, 30, 70)]
assert all(s[2:] != TRACE_SHAPE[2:] for s in SIZES)


# Training class weights of the exported models; with the class weight correction on, they
# change the predicted class at many pixels (checked in _make_checkpoint).
CLASS_WEIGHTS = [0.5, 1.0, 6.0, 0.0]


def _make_checkpoint(folder, mask_on: bool, seed: int, correction: float):
    """A tiny random model whose class scores vary from pixel to pixel, whose ignore class
    would win everywhere if it were not excluded, and whose class weight correction changes
    its predictions; saved as the trainer does, with its config."""
    torch.manual_seed(seed)
    cfg = tiny_cfg(mask_on=mask_on)
    cfg.MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION = correction
    model = build_model(cfg, METADATA).eval()
    model.set_training_class_weights(CLASS_WEIGHTS)
    with torch.no_grad():
        torch.nn.init.normal_(model.sem_seg_head.predictor.weight, std=0.3)
        model.sem_seg_head.predictor.bias[IGNORE] = 20.0
        x = (torch.rand(1, 3, 64, 64) * 255 - model.pixel_mean) / model.pixel_std
        raw_logits = model.sem_seg_head(model.backbone(x))
        image = _images(1, 64, 64, seed)[0]
        corrected = model([{"image": image}])[0]["segmentation_image"]
        model.class_weight_correction = 0.0
        uncorrected = model([{"image": image}])[0]["segmentation_image"]
        model.class_weight_correction = correction
    assert (raw_logits.argmax(1) == IGNORE).float().mean() > 0.9
    assert (corrected != uncorrected).float().mean() > 0.05
    os.makedirs(folder, exist_ok=True)
    SegdetCheckpointer(model, str(folder), extra_data={"metadata": METADATA.to_dict(), "config": cfg.dump()}
                       ).save("model_final")
    config_file = os.path.join(folder, "config.yaml")
    with open(config_file, "w") as f:
        f.write(cfg.dump())
    return model, config_file, os.path.join(folder, "model_final.pth")


@pytest.fixture(scope="module")
def panoptic(tmp_path_factory):
    return _make_checkpoint(tmp_path_factory.mktemp("panoptic"), mask_on=True, seed=0, correction=0.75)


@pytest.fixture(scope="module")
def semantic(tmp_path_factory):
    return _make_checkpoint(tmp_path_factory.mktemp("semantic"), mask_on=False, seed=1, correction=1.0)


CLI_TEST = "test_cli_exports_panoptic_fpn_semantic_path_to_onnx"


@pytest.fixture(scope="module", autouse=True)
def cli_export(request, panoptic, tmp_path_factory):
    """Starts the command-line export (an ONNX export takes ~15 s of one core) when its test is
    selected, so that it runs alongside the other tests; its test, the last one, waits for it."""
    if not any(item.name == CLI_TEST for item in request.session.items):
        yield None
        return
    _, config_file, weights = panoptic
    output = tmp_path_factory.mktemp("cli") / "out" / "model.onnx"
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "tools", "export_model.py"), "--config-file", config_file,
         "--format", "onnx", "--output", str(output), "--height", "40", "--width", "56", "MODEL.WEIGHTS", weights],
        # One thread: the export is mostly Python work, and it shares the CPU with the other tests.
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    yield proc, output
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def _images(batch, height, width, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, height, width), generator=generator, dtype=torch.uint8)


def _reference(model, images):
    """The model's output dicts (at the input size, so nothing is resized), stacked."""
    h, w = images.shape[-2:]
    with torch.no_grad():
        outputs = model([{"image": im, "height": h, "width": w} for im in images])
    return [torch.stack([o[k] for o in outputs]).numpy() for k in OUTPUT_NAMES]


def _assert_matches(got, expected):
    scores, segmentation, confidence = got
    ref_scores, ref_segmentation, ref_confidence = expected
    assert scores.shape == ref_scores.shape and segmentation.shape == ref_segmentation.shape
    assert scores.dtype == np.float32 and segmentation.dtype == np.int64
    np.testing.assert_allclose(scores, ref_scores, atol=1e-4, rtol=0)
    np.testing.assert_allclose(confidence, ref_confidence, atol=1e-4, rtol=0)
    np.testing.assert_allclose(scores.sum(1), 1.0, atol=1e-5)
    assert (scores[:, IGNORE] == 0).all()
    assert not (segmentation == IGNORE).any()
    # Equal except where the best two classes are within the tolerance of each other.
    top2 = np.sort(ref_scores, axis=1)[:, -2:]
    differ = segmentation != ref_segmentation
    assert (top2[:, 1][differ] - top2[:, 0][differ] < 1e-4).all()
    assert differ.mean() < 0.001
    assert len(np.unique(ref_segmentation)) > 1  # a comparison of more than a constant map


def test_semantic_segmentor_onnx(semantic, tmp_path):
    model, config_file, weights = semantic
    assert type(model) is SemanticSegmentor
    output = str(tmp_path / "semantic.onnx")
    result = export_model(load_config(config_file), output, "onnx", weights=weights, check_size=(40, 56))
    assert result.max_abs_diff < 1e-4 and result.segmentation_mismatch < 0.01
    session = ort.InferenceSession(output, providers=["CPUExecutionProvider"])
    for seed, (n, h, w) in enumerate(SIZES):
        images = _images(n, h, w, 10 + seed)
        _assert_matches(session.run(None, {"image": images.float().numpy()}), _reference(model, images))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("arch", ["panoptic", "semantic"])
def test_torchscript(arch, request, tmp_path):
    model, config_file, weights = request.getfixturevalue(arch)
    cfg = load_config(config_file, ["MODEL.WEIGHTS", weights])
    output = str(tmp_path / "model.ts")
    result = export_model(cfg, output, "torchscript", check_size=(32, 64))
    assert result.max_abs_diff < 1e-4
    assert json.loads(open(output + ".json").read())["output_names"] == list(OUTPUT_NAMES)
    loaded = torch.jit.load(output)
    for seed, (n, h, w) in enumerate(SIZES):
        images = _images(n, h, w, 20 + seed)
        with torch.no_grad():
            got = [t.numpy() for t in loaded(images.float())]
        _assert_matches(got, _reference(model, images))


@pytest.mark.parametrize("divisibility", [1, 32])
def test_padded_size_is_a_multiple_of_divisibility_and_at_least_twice_it(divisibility):
    for size in range(1, 200):
        expected = max(math.ceil(size / divisibility), 2) * divisibility
        assert padded_size(size, divisibility) == expected, size
        assert pad_and_stack([torch.zeros(size, 1)], divisibility).shape[-2] == expected


def test_scores_only_module_matches_model_output(semantic):
    model = semantic[0]
    module = SemanticExportModule(model, with_segmentation=False).eval()
    images = _images(1, 64, 32, 30)
    with torch.no_grad():
        (scores,) = module(images.float())
    np.testing.assert_allclose(scores.numpy(), _reference(model, images)[0], atol=1e-6, rtol=0)


def test_checkpoint_without_semantic_head_is_an_error(semantic, tmp_path):
    model, config_file, _ = semantic
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("sem_seg_head.")}
    path = str(tmp_path / "backbone_only.pth")
    atomic_torch_save({"model": state, "metadata": METADATA.to_dict()}, path)
    with pytest.raises(CheckpointError, match=r"backbone_only\.pth does not fit.* lacks .* semantic path"):
        load_model_for_export(load_config(config_file), path)


def test_metadata_from_the_datasets_when_the_checkpoint_has_none(semantic, tmp_path):
    model, config_file, _ = semantic
    path = str(tmp_path / "weights_only.pth")
    atomic_torch_save({"model": model.state_dict()}, path)
    name = "segdet_export_test_dataset"
    register_dataset(name, lambda: [], dataclasses.replace(METADATA, name=name))
    try:
        cfg = load_config(config_file, ["DATASETS.TEST", f"('{name}',)"])
        loaded, metadata = load_model_for_export(cfg, path)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    assert metadata.class_names == METADATA.class_names and metadata.ignore_class_ids == [IGNORE]
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


# Last: it waits for the export the module fixture started.
def test_cli_exports_panoptic_fpn_semantic_path_to_onnx(panoptic, cli_export):
    model = panoptic[0]
    assert isinstance(model, PanopticFPN)
    proc, output = cli_export
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert f"wrote {output}" in stdout and "max abs difference of sem_seg" in stdout
    diff = float(stdout.split("max abs difference of sem_seg ")[1].split(",")[0])
    assert diff < 1e-4
    assert sorted(os.listdir(output.parent)) == ["model.onnx", "model.onnx.json"]  # no temp files left

    info = json.loads((output.parent / "model.onnx.json").read_text())
    onnx_model = onnx.load(str(output))
    assert info["opset"] == next(o.version for o in onnx_model.opset_import if o.domain in ("", "ai.onnx"))
    assert info["output_names"] == [o.name for o in onnx_model.graph.output] == list(OUTPUT_NAMES)
    assert info["class_names"] == METADATA.class_names
    assert info["class_colors"] == [list(c) for c in METADATA.class_colors]
    assert info["ignore_class_ids"] == [IGNORE]
    assert info["input"]["name"] == onnx_model.graph.input[0].name == "image"
    assert (info["input"]["color"], info["input"]["value_range"], info["input"]["layout"]) == ("RGB", [0, 255], "NCHW")
    # Only the semantic path: no detection ops in the graph.
    assert not {"NonMaxSuppression", "RoiAlign"} & {n.op_type for n in onnx_model.graph.node}

    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    for seed, (n, h, w) in enumerate(SIZES):
        images = _images(n, h, w, seed)
        got = session.run(None, {"image": images.float().numpy()})
        _assert_matches(got, _reference(model, images))
