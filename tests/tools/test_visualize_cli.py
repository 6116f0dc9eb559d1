"""tools/visualize.py end to end on tiny generated files.

One run goes through a subprocess exactly as a user runs the tool; the others call its
main() in this process, which saves the interpreter start-up (importing torch).
"""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from segdet.data.catalog import DatasetCatalog, MetadataCatalog, register_dataset
from segdet.structures.metadata import Metadata
from segdet.errors import SegdetError
from tests.tools.tool_loader import tool_main as run_tool

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "visualize.py"
PYTHON = ROOT / ".venv" / "bin" / "python"

CLASSES = {"classes": [
    {"id": 0, "name": "background", "color": [30, 30, 30]},
    {"id": 1, "name": "part", "color": [0, 200, 255], "thing": True},
    {"id": 2, "name": "scratch", "color": [255, 60, 60]},
    {"id": 3, "name": "void", "color": [255, 255, 255], "ignore": True},
]}
H, W = 24, 32


def tool_main(*args):
    return run_tool("visualize", *args)


def read_png(path):
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a readable image"
    return image


def assert_picture(path, min_height, min_width):
    image = read_png(path)
    assert image.shape[0] >= min_height and image.shape[1] >= min_width, image.shape
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 2


def make_folders(tmp_path, n=2):
    """images/, gt/ and pred/ folders (gray labels) and classes.json."""
    rng = np.random.default_rng(0)
    for sub in ("images", "gt", "pred"):
        (tmp_path / sub).mkdir()
    for i in range(n):
        image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        gt = np.zeros((H, W), np.uint8)
        gt[4:14, 6:20] = 1
        gt[16:20, 2:30] = 2
        gt[3, 5:21] = 3  # a void line
        pred = np.where(gt == 3, 0, gt).astype(np.uint8)
        pred[16:20, 2:10] = 0  # some wrong pixels
        assert cv2.imwrite(str(tmp_path / "images" / f"img{i}.jpg"), image)
        assert cv2.imwrite(str(tmp_path / "gt" / f"img{i}.png"), gt)
        assert cv2.imwrite(str(tmp_path / "pred" / f"img{i}.png"), pred)
    (tmp_path / "classes.json").write_text(json.dumps(CLASSES))
    return tmp_path


def test_predictions_from_folders_as_a_subprocess(tmp_path):
    make_folders(tmp_path)
    out = tmp_path / "vis"
    result = subprocess.run(
        [str(PYTHON if PYTHON.exists() else sys.executable), str(TOOL), "predictions", "--pred", tmp_path / "pred",
         "--gt", tmp_path / "gt", "--images", tmp_path / "images", "--classes", tmp_path / "classes.json",
         "--output", out],
        capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert result.returncode == 0, result.stderr
    assert f"wrote 2 prediction picture(s) to {out}" in result.stdout
    # Four panels of the image enlarged 4x (24 px -> 96 px high), plus the legend.
    for i in range(2):
        assert_picture(out / f"img{i}.png", 4 * H, 4 * 4 * W)


def test_missing_file_is_one_clear_line(tmp_path, capsys):
    from segdet.utils.cli import run_cli

    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: tool_main("metrics", "--metrics", tmp_path / "nope.json", "--output", tmp_path / "m.png"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: metrics file not found: {tmp_path / 'nope.json'}"]


def test_predictions_of_a_registered_dataset(tmp_path, capsys):
    make_folders(tmp_path, n=3)
    md = Metadata.from_dict({"class_names": [c["name"] for c in CLASSES["classes"]],
                             "class_colors": [c["color"] for c in CLASSES["classes"]], "ignore_class_ids": [3]})
    dicts = [{"file_name": str(tmp_path / "images" / f"img{i}.jpg"), "height": H, "width": W,
              "image_id": f"img{i}", "sem_seg_file_name": str(tmp_path / "gt" / f"img{i}.png")} for i in range(3)]
    register_dataset("vis_cli_preds", lambda: dicts, md)
    try:
        (tmp_path / "pred" / "img2.png").unlink()  # not every image needs a prediction
        # tools/predict.py's other outputs in the same folder are not predictions to draw.
        for extra in ("img0_confidence.png", "img0_overlay.jpg", "img1_confidence.png"):
            cv2.imwrite(str(tmp_path / "pred" / extra), np.full((H, W, 3), 200, np.uint8))
        assert tool_main("predictions", "--pred", tmp_path / "pred", "--dataset", "vis_cli_preds",
                         "--output", tmp_path / "vis") == 0
        assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == ["img0.png", "img1.png"]
        assert "wrote 2 prediction picture(s)" in capsys.readouterr().out
        assert tool_main("predictions", "--pred", tmp_path / "pred", "--dataset", "vis_cli_preds",
                         "--output", tmp_path / "vis1", "--max-images", 1) == 0
        assert sorted(p.name for p in (tmp_path / "vis1").iterdir()) == ["img0.png"]
    finally:
        DatasetCatalog.remove("vis_cli_preds")
        MetadataCatalog.remove("vis_cli_preds")


def test_predictions_bad_inputs(tmp_path):
    make_folders(tmp_path)
    with pytest.raises(SegdetError, match="missing --images, --classes"):
        tool_main("predictions", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--output", tmp_path / "v")
    with pytest.raises(SegdetError, match="unknown dataset 'no_such_dataset'"):
        tool_main("predictions", "--pred", tmp_path / "pred", "--dataset", "no_such_dataset", "--output", tmp_path)
    bad = tmp_path / "pred" / "img0.png"
    cv2.imwrite(str(bad), np.full((H, W), 9, np.uint8))
    with pytest.raises(SegdetError, match=r"img0.png: value\(s\) \[9\] are not declared classes"):
        tool_main("predictions", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--images",
                  tmp_path / "images", "--classes", tmp_path / "classes.json", "--output", tmp_path / "v")


def test_dataset_ground_truth_with_instances(tmp_path, capsys):
    make_folders(tmp_path, n=1)
    md = Metadata([c["name"] for c in CLASSES["classes"]], ignore_class_ids=[3], thing_class_ids=[1])
    annotations = [{"category_id": 1, "bbox": [6, 4, 14, 10], "bbox_mode": 1, "iscrowd": 0,
                    "segmentation": [[6, 4, 20, 4, 20, 14, 6, 14]]}]
    dicts = [{"file_name": str(tmp_path / "images" / "img0.jpg"), "height": H, "width": W, "image_id": "a/img0",
              "sem_seg_file_name": str(tmp_path / "gt" / "img0.png"), "annotations": annotations}]
    register_dataset("vis_cli_gt", lambda: dicts, md)
    try:
        assert tool_main("dataset", "--dataset", "vis_cli_gt", "--output", tmp_path / "gt_vis") == 0
    finally:
        DatasetCatalog.remove("vis_cli_gt")
        MetadataCatalog.remove("vis_cli_gt")
    assert_picture(tmp_path / "gt_vis" / "a_img0.png", 4 * H, 2 * 4 * W)
    assert f"wrote 1 ground-truth picture(s) of vis_cli_gt to {tmp_path / 'gt_vis'}" in capsys.readouterr().out


def test_dataset_declared_in_a_config(tmp_path):
    make_folders(tmp_path, n=2)
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "DATASETS:\n  CUSTOM:\n    vis_cfg_parts:\n      FORMAT: image_folder\n"
        f"      IMAGE_DIR: {tmp_path / 'images'}\n      LABEL_DIR: {tmp_path / 'gt'}\n"
        f"      CLASSES_FILE: {tmp_path / 'classes.json'}\n")
    try:
        assert tool_main("dataset", "--dataset", "vis_cfg_parts", "--config-file", config,
                         "--output", tmp_path / "out", "--max-images", 1) == 0
    finally:
        DatasetCatalog.remove("vis_cfg_parts")
        MetadataCatalog.remove("vis_cfg_parts")
    files = list((tmp_path / "out").iterdir())
    assert len(files) == 1
    assert_picture(files[0], 4 * H, 2 * 4 * W)


def test_evaluation_and_metrics_subcommands(tmp_path, capsys):
    conf = [[30, 2, 0, 0], [3, 12, 0, 0], [0, 1, 9, 0], [0, 0, 0, 0]]
    results = {"sem_seg": {"class_iou": [0.86, 0.67, 0.9, -1], "mean_iou": 0.81, "pixel_confusion_matrix": conf,
                           "IoU-background": 86.0, "IoU-part": 67.0, "IoU-scratch": 90.0, "IoU-void": -1}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert tool_main("evaluation", "--results", tmp_path / "results.json", "--output", tmp_path / "eval") == 0
    for name in ("class_iou.png", "confusion_matrix.png"):
        assert_picture(tmp_path / "eval" / name, 200, 300)

    lines = [json.dumps({"iteration": i, "total_loss": 1.0 / (i + 1), "loss_sem_seg": 0.5 / (i + 1)})
             for i in range(0, 50, 10)]
    lines.append(json.dumps({"iteration": 49, "sem_seg/mean_iou": 0.7}))
    (tmp_path / "metrics.json").write_text("\n".join(lines) + "\n")
    assert tool_main("metrics", "--metrics", tmp_path / "metrics.json", "--output", tmp_path / "m.png") == 0
    assert_picture(tmp_path / "m.png", 400, 1000)
    out = capsys.readouterr().out
    assert str(tmp_path / "eval" / "confusion_matrix.png") in out and f"wrote {tmp_path / 'm.png'}" in out


def test_predictions_in_another_label_format_than_the_dataset(tmp_path):
    make_folders(tmp_path, n=1)
    gt = cv2.imread(str(tmp_path / "gt" / "img0.png"), cv2.IMREAD_UNCHANGED)
    blue = np.zeros((H, W, 3), np.uint8)
    blue[..., 0] = np.where(gt == 3, 0, gt)  # OpenCV writes BGR: channel 0 is blue
    blue[..., 2] = 77  # DeepDIVA files may hold anything in the other channels
    cv2.imwrite(str(tmp_path / "pred" / "img0.png"), blue)
    md = Metadata([c["name"] for c in CLASSES["classes"]], ignore_class_ids=[3])
    dicts = [{"file_name": str(tmp_path / "images" / "img0.jpg"), "height": H, "width": W, "image_id": "img0",
              "sem_seg_file_name": str(tmp_path / "gt" / "img0.png")}]
    register_dataset("vis_cli_blue", lambda: dicts, md)
    try:
        with pytest.raises(SegdetError, match="color pixels but the label format is 'gray'"):
            tool_main("predictions", "--pred", tmp_path / "pred", "--dataset", "vis_cli_blue", "--output", tmp_path)
        assert tool_main("predictions", "--pred", tmp_path / "pred", "--dataset", "vis_cli_blue",
                         "--label-format", "blue", "--output", tmp_path / "vis") == 0
    finally:
        DatasetCatalog.remove("vis_cli_blue")
        MetadataCatalog.remove("vis_cli_blue")
    assert_picture(tmp_path / "vis" / "img0.png", 4 * H, 4 * 4 * W)
