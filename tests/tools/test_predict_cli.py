"""tools/predict.py end to end.

Two runs go through a subprocess as a user runs the tool (exit status, messages); the
others call its main() in this process, which saves the interpreter start-up.
"""
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from segdet.data.label_codec import LabelCodec
from segdet.errors import ConfigError, DataError
from segdet.data.prediction_folder import read_manifest
from segdet.inference.predict_files import collect_inputs, output_stems
from segdet.inference.predictor import Predictor
from segdet.inference.writers import write_overlay
from tests.inference.common import random_image, save_tiny_checkpoint
from tests.modeling.test_meta_arch import METADATA

ROOT = Path(__file__).resolve().parents[2]
TOOL = str(ROOT / "tools" / "predict.py")


def load_tool():
    spec = importlib.util.spec_from_file_location("predict_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


predict_tool = load_tool()


def tool_main(*args):
    return predict_tool.main([str(a) for a in args])


def run_tool(*args):
    # One intra-op thread: steadier on a shared machine (see tests/inference/conftest.py).
    return subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(autouse=True)
def one_torch_thread():
    """See tests/inference/conftest.py: one intra-op thread is steadier on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def panoptic(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("cli_panoptic"), mask_on=True, seed=1)


@pytest.fixture(scope="module")
def semantic(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("cli_semantic"), mask_on=False)


def write_images(folder, sizes, corrupt=()):
    folder.mkdir(parents=True, exist_ok=True)
    images = {}
    for k, (name, (h, w)) in enumerate(sizes.items()):
        images[name] = random_image(h, w, seed=10 + k)
        assert cv2.imwrite(str(folder / name), cv2.cvtColor(images[name], cv2.COLOR_RGB2BGR))
    for name in corrupt:
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n but then nothing an image should hold")
    return images


def test_all_outputs_of_a_panoptic_model(tmp_path, panoptic):
    path, _, _ = panoptic
    images = write_images(tmp_path / "in", {"a.png": (48, 64), "b.png": (48, 64), "c.bmp": (40, 56)})
    out = tmp_path / "out"
    assert tool_main("--weights", path, "--input", tmp_path / "in", "--output", out, "--batch-size", "2") == 0
    predictor = Predictor.from_checkpoint(path)
    codec = LabelCodec(METADATA)
    with open(out / "coco_instances_results.json") as f:
        coco = json.load(f)
    for name, image in images.items():
        stem = os.path.splitext(name)[0]
        expected = predictor(image)
        assert np.array_equal(codec.read(str(out / f"{stem}.png")), expected["segmentation_image"].numpy())
        confidence = cv2.imread(str(out / f"{stem}_confidence.png"), cv2.IMREAD_UNCHANGED)
        assert confidence.dtype == np.uint8
        # round(255 * c); batched and single forward passes may round differently.
        assert np.abs(confidence / 255.0 - expected["segmentation_confidence"].numpy()).max() <= 1 / 255
        overlay = cv2.imread(str(out / f"{stem}_overlay.jpg"))
        assert overlay.shape == image.shape
        mine = [r for r in coco if r["image_id"] == stem]
        assert len(mine) == len(expected["instances"].scores)
        assert all(r["segmentation"]["size"] == list(image.shape[:2]) for r in mine)
        assert sorted(r["score"] for r in mine) == pytest.approx(sorted(expected["instances"].scores.tolist()))
    assert {r["category_id"] for r in coco} <= set(METADATA.thing_class_ids)


def test_tiled_images_get_instances_in_the_coco_json(tmp_path, panoptic):
    path, _, _ = panoptic
    images = write_images(tmp_path / "in", {"big.png": (90, 120), "small.png": (48, 64)})
    out = tmp_path / "out"
    assert tool_main("--weights", path, "--input", tmp_path / "in", "--output", out, "--tile-size", "64") == 0
    predictor = Predictor.from_checkpoint(path)
    with open(out / "coco_instances_results.json") as f:
        coco = json.load(f)
    expected = predictor(images["big.png"], tile_size=64)
    mine = [r for r in coco if r["image_id"] == "big"]
    assert len(mine) == len(expected["instances"]) > 0
    crops = expected["instances"].pred_mask_crops
    for k, r in enumerate(mine):
        assert r["segmentation"]["size"] == [90, 120]  # RLE at image coordinates
        decoded = mask_util.decode(dict(r["segmentation"], counts=r["segmentation"]["counts"].encode()))
        assert np.array_equal(decoded, crops.paste(k))
        assert r["score"] == pytest.approx(float(expected["instances"].scores[k]))
    assert {r["image_id"] for r in coco} == {"big", "small"}
    # The overlay of the tiled image: the picture of its output (outlines from the crops; the
    # tiny model's scores are below the drawing threshold, see test_writers for the outlines).
    reference = write_overlay(str(tmp_path / "expected.jpg"), images["big.png"], expected, predictor.metadata)
    assert np.array_equal(cv2.imread(str(out / "big_overlay.jpg")), cv2.imread(reference))
    assert "semantic outputs only" not in (out / "log.txt").read_text()


def test_config_file_with_weights_overrides_and_other_formats(tmp_path, semantic):
    path, cfg, _ = semantic
    config_file = tmp_path / "model.yaml"
    config_file.write_text(cfg.dump())
    images = write_images(tmp_path / "in", {"x.png": (48, 64), "y.png": (90, 70)})
    out = tmp_path / "out"
    # The overrides right after the inputs: split off from them.
    assert tool_main("--config-file", config_file, "--weights", path, "--output", out, "--label-format", "blue",
                     "--confidence-format", "tiff", "--no-overlay", "--tile-size", "64", "--tile-merge", "mean",
                     "--input", tmp_path / "in" / "x.png", tmp_path / "in" / "y.png",
                     "TEST.TILE_OVERLAP", "0.25") == 0
    predictor = Predictor(cfg, weights=path)
    blue = LabelCodec(dataclasses.replace(METADATA, label_format="blue"))
    for stem, image in (("x", images["x.png"]), ("y", images["y.png"])):
        expected = predictor(image, tile_size=64, overlap=0.25, merge="mean")
        assert np.array_equal(blue.read(str(out / f"{stem}.png")), expected["segmentation_image"].numpy())
        tiff = cv2.imread(str(out / f"{stem}_confidence.tiff"), cv2.IMREAD_UNCHANGED)
        assert tiff.dtype == np.float32
        assert np.allclose(tiff, expected["segmentation_confidence"].numpy(), atol=1e-6)
    assert sorted(p.name for p in out.iterdir()) == ["log.txt", "segdet_predictions.json", "x.png",
                                                     "x_confidence.tiff", "y.png", "y_confidence.tiff"]
    assert "overlap 0.25, merge 'mean'" in (out / "log.txt").read_text()


def test_palette_and_npy_with_a_glob(tmp_path, semantic):
    path, _, _ = semantic
    images = write_images(tmp_path / "in", {"p1.png": (48, 64), "p2.jpg": (48, 64), "other.png": (48, 64)})
    out = tmp_path / "out"
    assert tool_main("--weights", path, "--input", str(tmp_path / "in" / "p*"), "--output", out,
                     "--label-format", "palette", "--confidence-format", "npy", "--no-overlay") == 0
    assert sorted(p.name for p in out.iterdir()) == ["log.txt", "p1.png", "p1_confidence.npy",
                                                     "p2.png", "p2_confidence.npy", "segdet_predictions.json"]
    expected = Predictor.from_checkpoint(path)(images["p1.png"])
    palette = LabelCodec(dataclasses.replace(METADATA, label_format="palette"))
    assert np.array_equal(palette.read(str(out / "p1.png")), expected["segmentation_image"].numpy())
    # The manifest: the model file, its classes, the PNGs' label format and each output's input.
    manifest = read_manifest(str(out))
    assert manifest.weights == os.path.abspath(path) and manifest.label_format == "palette"
    assert manifest.metadata.class_names == METADATA.class_names
    assert manifest.metadata.ignore_class_ids == METADATA.ignore_class_ids
    assert manifest.inputs == {"p1": str(tmp_path / "in" / "p1.png"), "p2": str(tmp_path / "in" / "p2.jpg")}
    codec = LabelCodec(manifest.segmentation_metadata())
    assert np.array_equal(codec.read(str(out / "p1.png")), expected["segmentation_image"].numpy())
    assert np.allclose(np.load(out / "p1_confidence.npy"), expected["segmentation_confidence"].numpy(), atol=1e-6)


def test_model_without_config_or_weights_is_a_config_error(tmp_path):
    write_images(tmp_path / "in", {"a.png": (8, 8)})
    with pytest.raises(ConfigError, match="--weights"):
        tool_main("--input", tmp_path / "in", "--output", tmp_path / "out")


def test_collect_inputs(tmp_path):
    write_images(tmp_path / "d", {"b.png": (4, 4), "a.jpg": (4, 4)})
    (tmp_path / "d" / "notes.txt").write_text("not an image")
    write_images(tmp_path / "d" / "sub", {"deep.png": (4, 4)})  # folders are not searched recursively
    d = str(tmp_path / "d")
    found = collect_inputs([d, os.path.join(d, "*.png"), os.path.join(d, "b.png")])
    assert found == [os.path.join(d, "a.jpg"), os.path.join(d, "b.png")]
    assert collect_inputs([os.path.join(d, "missing.png")]) == [os.path.join(d, "missing.png")]
    with pytest.raises(DataError, match="no images found"):
        collect_inputs([os.path.join(d, "*.tif")])


def test_repeated_stems_are_an_error_naming_both_files():
    assert output_stems(["a/x.png", "b/y.png"]) == ["x", "y"]
    with pytest.raises(DataError, match="same name 'x': a/x.png and b/x.jpg"):
        output_stems(["a/x.png", "b/x.jpg", "y.png"])


def test_corrupt_file_in_the_middle_is_skipped_and_named(tmp_path, semantic):
    path, _, _ = semantic
    write_images(tmp_path / "in", {"a.png": (48, 64), "c.png": (48, 64)}, corrupt=["b.png"])
    out = tmp_path / "out"
    result = run_tool("--weights", path, "--input", tmp_path / "in", "--output", out, "--no-overlay")
    assert result.returncode == 1, result.stderr
    # Done with a skipped input: the others are predicted, and one line names the file and the problem.
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: image {tmp_path / 'in' / 'b.png'} is corrupt (cut short")
    text = result.stdout + result.stderr
    assert "Skipping" in text and "b.png" in text and "corrupt" in text
    assert "2 of 3 images predicted" in text and "1 skipped" in text
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_confidence.png", "c.png", "c_confidence.png",
                                                     "log.txt", "segdet_predictions.json"]
    assert sorted(read_manifest(str(out)).inputs) == ["a", "c"]  # the skipped file has no outputs


def test_no_input_found_exits_2_with_one_line(tmp_path):
    result = run_tool("--weights", tmp_path / "m.pth", "--input", tmp_path / "nothing" / "*.png",
                      "--output", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: no images found") and "Traceback" not in result.stderr


def test_tta_flag_predicts_with_test_time_augmentation(tmp_path, semantic):
    path, _, _ = semantic
    images = write_images(tmp_path / "in", {"x.png": (48, 64)})
    out = tmp_path / "out"
    assert tool_main("--weights", path, "--input", tmp_path / "in", "--output", out, "--no-overlay", "--tta",
                     "TEST.AUG.MIN_SIZES", "(32, 48)", "MODEL.DEVICE", "cpu") == 0
    expected = Predictor.from_checkpoint(path, ["MODEL.DEVICE", "cpu", "TEST.AUG.ENABLED", "True",
                                                "TEST.AUG.MIN_SIZES", "(32, 48)"])(images["x.png"])
    plain = Predictor.from_checkpoint(path, ["MODEL.DEVICE", "cpu"])(images["x.png"])
    written = LabelCodec(METADATA).read(str(out / "x.png"))
    assert np.array_equal(written, expected["segmentation_image"].numpy())
    assert not np.array_equal(written, plain["segmentation_image"].numpy())


def test_tta_flag_with_a_detectron2_model_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="^--tta: segdet.d2's models have no test-time augmentation"):
        predict_tool.build_predictor(predict_tool.parse_args(
            ["--engine", "detectron2", "--tta", "--weights", "m.pth", "--input", "x.png", "--output", str(tmp_path)]))


def test_onnxruntime_engine_serial_io_and_batches_give_the_same_files(tmp_path, semantic):
    path, _, _ = semantic
    write_images(tmp_path / "in", {"a.png": (48, 64), "b.png": (48, 64), "c.png": (40, 56)})
    torch_out, ort_out = tmp_path / "torch", tmp_path / "ort"
    assert tool_main("--weights", path, "--input", tmp_path / "in", "--output", torch_out) == 0
    assert tool_main("--weights", path, "--input", tmp_path / "in", "--output", ort_out, "--engine", "onnxruntime",
                     "--io-workers", "0", "--batch-size", "2") == 0
    assert "engine onnxruntime" in (ort_out / "log.txt").read_text()
    assert "serial I/O" in (ort_out / "log.txt").read_text()
    codec = LabelCodec(METADATA)
    for stem in ("a", "b", "c"):
        assert np.array_equal(codec.read(str(ort_out / f"{stem}.png")), codec.read(str(torch_out / f"{stem}.png")))
        confidences = [cv2.imread(str(folder / f"{stem}_confidence.png"), cv2.IMREAD_UNCHANGED).astype(int)
                       for folder in (torch_out, ort_out)]
        assert np.abs(confidences[0] - confidences[1]).max() <= 1  # round(255 * c) of scores 1e-5 apart


def test_onnxruntime_engine_of_a_panoptic_model_exits_2_with_one_line(tmp_path, panoptic):
    path, _, _ = panoptic
    write_images(tmp_path / "in", {"a.png": (48, 64)})
    result = run_tool("--weights", path, "--input", tmp_path / "in", "--output", tmp_path / "out",
                      "--engine", "onnxruntime")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "semantic models only" in lines[0] and lines[0].startswith("error: TEST.ENGINE")


def test_io_workers_must_not_be_negative(tmp_path):
    with pytest.raises(SystemExit):
        predict_tool.parse_args(["--input", "x.png", "--output", str(tmp_path), "--io-workers", "-1"])
