"""tools/eval_predictions.py end to end.

Two runs go through a subprocess exactly as a user runs the tool (exit status,
stdout/stderr); the others call its main() in this process, which saves the
interpreter start-up (importing torch) on a shared CPU.
"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from segdet.utils.cli import run_cli
from tests.evaluation.test_sem_seg_measures import HALCON_GT, HALCON_PRED, NAMES

ROOT = Path(__file__).resolve().parents[2]
TOOL = str(ROOT / "tools" / "eval_predictions.py")


def run_tool(*args):
    return subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def tool_main(*args):
    """The tool's exit status, as a user sees it: main() through run_cli (errors: one line, status 2)."""
    spec = importlib.util.spec_from_file_location("eval_predictions_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return run_cli(lambda: module.main([str(a) for a in args]))
    except SystemExit as stop:
        return stop.code


def write_gray(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.asarray(ids, dtype=np.uint8))


def write_blue(path, ids, rng):
    """DeepDIVA style: class in the blue channel, noise in the others (which must be ignored)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = rng.integers(0, 256, size=np.shape(ids) + (3,), dtype=np.uint8)
    bgr[..., 0] = ids  # OpenCV writes BGR: channel 0 is blue
    assert cv2.imwrite(str(path), bgr)


def halcon_folders(tmp_path, writer):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    writer(gt / "img1.png", HALCON_GT)
    writer(pred / "img1.png", HALCON_PRED)
    # Second image: perfect; the prediction may have another extension than the gt.
    second = np.zeros((3, 5), np.uint8)
    second[1, 1:4] = 2
    writer(gt / "img2.png", second)
    writer(pred / "img2.bmp", second)
    return gt, pred


def test_gray_folders_end_to_end(tmp_path):
    gt, pred = halcon_folders(tmp_path, write_gray)
    out = tmp_path / "res" / "eval.json"
    proc = run_tool("--gt", gt, "--pred", pred, "--num-classes", 5, "--ignore-class-ids", 4,
                    "--class-names", *NAMES, "--output", out, "--per-image")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())["sem_seg"]
    # HALCON case (24 evaluated pixels) plus 15 perfect pixels: 12 background, 3 lemon.
    assert res["pixel_accuracy"] == pytest.approx((21 + 15) / (24 + 15))
    assert res["class_iou"] == pytest.approx([28 / 31, 3 / 4, 5 / 6, -1, -1])
    assert res["mIoU"] == pytest.approx(100 * (28 / 31 + 3 / 4 + 5 / 6) / 3)
    per_image = json.loads(out.read_text())["sem_seg_per_image"]
    assert [r["image_id"] for r in per_image] == ["img1", "img2"]
    assert (tmp_path / "res" / "eval_confusion.png").stat().st_size > 0
    # The per-class table names the classes and marks the ignore class.
    assert "orange" in proc.stdout and "border (ignore)" in proc.stdout and "0.7500" in proc.stdout


def test_the_side_files_of_tools_predict_are_not_predictions(tmp_path):
    gt, pred = halcon_folders(tmp_path, write_gray)
    # tools/predict.py writes a confidence PNG and an overlay JPEG next to each segmentation PNG.
    write_gray(pred / "img1_confidence.png", np.full(np.shape(HALCON_GT), 255))
    assert cv2.imwrite(str(pred / "img2_overlay.jpg"), np.zeros((3, 5, 3), np.uint8))
    out = tmp_path / "eval.json"
    assert tool_main("--gt", gt, "--pred", pred, "--num-classes", 5, "--ignore-class-ids", 4,
                     "--output", out) == 0
    res = json.loads(out.read_text())["sem_seg"]
    assert res["pixel_accuracy"] == pytest.approx((21 + 15) / (24 + 15))  # as without the side files


def test_blue_channel_folders(tmp_path):
    rng = np.random.default_rng(0)
    gt, pred = halcon_folders(tmp_path, lambda p, ids: write_blue(p, ids, rng))
    out = tmp_path / "blue.json"
    status = tool_main("--gt", gt, "--pred", pred, "--num-classes", 5, "--ignore-class-ids", 4,
                       "--label-format", "blue", "--output", out)
    assert status == 0
    assert (tmp_path / "blue_confusion.png").stat().st_size > 0
    res = json.loads(out.read_text())["sem_seg"]
    assert res["class_iou"] == pytest.approx([28 / 31, 3 / 4, 5 / 6, -1, -1])
    assert "IoU-class_1" in res  # default class names


def test_missing_files_are_named(tmp_path, capsys):
    gt, pred = halcon_folders(tmp_path, write_gray)
    os.remove(pred / "img2.bmp")
    write_gray(pred / "extra.png", HALCON_PRED)
    out = tmp_path / "x.json"
    assert tool_main("--gt", gt, "--pred", pred, "--num-classes", 5, "--output", out) != 0
    err = capsys.readouterr().err
    assert "no prediction" in err and "img2.png" in err
    assert "no ground truth" in err and "extra.png" in err
    assert not out.exists()


def test_class_names_must_match_the_number_of_classes(tmp_path, capsys):
    gt, pred = halcon_folders(tmp_path, write_gray)
    assert tool_main("--gt", gt, "--pred", pred, "--num-classes", 5, "--class-names", "a", "b",
                     "--output", tmp_path / "x.json") != 0
    assert "2 names" in capsys.readouterr().err


def test_bad_files_are_all_reported_by_name(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    ok = np.zeros((4, 4), np.uint8)
    write_gray(gt / "small.png", ok)
    write_gray(pred / "small.png", np.zeros((3, 4), np.uint8))  # other size
    write_gray(gt / "value.png", ok)
    write_gray(pred / "value.png", np.full((4, 4), 7, np.uint8))  # 7 is not a class
    write_gray(gt / "corrupt.png", ok)
    (pred / "corrupt.png").write_bytes(b"this is not a png")
    write_gray(gt / "gtvalue.png", np.full((4, 4), 9, np.uint8))  # bad ground truth value
    write_gray(pred / "gtvalue.png", ok)
    out = tmp_path / "x.json"
    proc = run_tool("--gt", gt, "--pred", pred, "--num-classes", 3, "--output", out)
    assert proc.returncode != 0
    err = proc.stderr
    assert "4 file problem(s)" in err
    assert f"{pred / 'small.png'} has size 4x3" in err and f"{gt / 'small.png'} has size 4x4" in err
    assert f"{pred / 'value.png'}: value(s) [7]" in err
    assert str(pred / "corrupt.png") in err
    assert f"{gt / 'gtvalue.png'}: value(s) [9]" in err
    assert not out.exists()
