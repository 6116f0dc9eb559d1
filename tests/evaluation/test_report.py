"""tools/report.py: one HTML page with the measures, the per-class table, the confusion matrix,
the training curves and the worst images; checked as text, and in headless Chromium where it is
installed (Debian's `chromium`)."""
import base64
import json
import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats.image_folder import register_image_folder
from segdet.evaluation.sem_seg_evaluation import evaluate_prediction_folders
from segdet.utils.files import write_json
from tests.tools.tool_loader import tool_main

H, W = 20, 24
CLASSES = {"classes": [{"id": 0, "name": "background", "color": [40, 40, 40]},
                       {"id": 1, "name": "crack", "color": [255, 0, 0]},
                       {"id": 2, "name": "border", "color": [255, 255, 255], "ignore": True}]}
# Pixels of class "crack" each image's prediction gets wrong (of 60 crack pixels): the ranking.
WRONG = {"a": 0, "b": 30, "c": 12}


@pytest.fixture
def evaluated(tmp_path):
    """A 3-image dataset, predictions laid out as tools/predict.py writes them, their results.json
    and a metrics.json."""
    rng = np.random.default_rng(0)
    for sub in ("images", "labels", "pred"):
        (tmp_path / sub).mkdir()
    (tmp_path / "classes.json").write_text(json.dumps(CLASSES))
    for stem, wrong in WRONG.items():
        gt = np.zeros((H, W), np.uint8)
        gt[5:11, 4:14] = 1  # 60 crack pixels
        gt[0, :] = 2  # a border row (ignored)
        pred = np.where(gt == 2, 0, gt).astype(np.uint8)
        pred_block = pred[5:11, 4:14].copy().reshape(-1)
        pred_block[:wrong] = 0
        pred[5:11, 4:14] = pred_block.reshape(6, 10)
        cv2.imwrite(str(tmp_path / "images" / f"{stem}.png"), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        cv2.imwrite(str(tmp_path / "labels" / f"{stem}.png"), gt)
        cv2.imwrite(str(tmp_path / "pred" / f"{stem}.png"), pred)
        cv2.imwrite(str(tmp_path / "pred" / f"{stem}_confidence.png"), np.full((H, W), 200, np.uint8))
    name = "report_test_parts"
    register_image_folder(name, str(tmp_path / "images"), str(tmp_path / "labels"),
                          classes_file=str(tmp_path / "classes.json"))
    metadata = MetadataCatalog.get(name)
    results, _ = evaluate_prediction_folders(str(tmp_path / "labels"), str(tmp_path / "pred"), metadata)
    write_json(results, str(tmp_path / "results.json"))
    with open(tmp_path / "metrics.json", "w") as f:
        for it, loss in ((19, 1.2), (39, 0.8), (59, 0.5)):
            f.write(json.dumps({"iteration": it, "total_loss": loss, "loss_sem_seg": loss, "lr": 0.001}) + "\n")
        f.write(json.dumps({"iteration": 59, "sem_seg/mean_iou": results["sem_seg"]["mean_iou"]}) + "\n")
    yield tmp_path, name, results
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def write_report(tmp_path, name, worst=2):
    out = tmp_path / "report" / "page.html"
    assert tool_main("report", "--results", tmp_path / "results.json", "--metrics", tmp_path / "metrics.json",
                     "--dataset", name, "--pred", tmp_path / "pred", "--worst", worst, "--output", out) == 0
    return out


def test_report_holds_the_measures_classes_and_the_worst_images(evaluated):
    tmp_path, name, results = evaluated
    page = write_report(tmp_path, name).read_text()
    # Per image 480 pixels: 60 crack, 24 border (ignored), 396 background. Over the 3 images 42 crack
    # pixels are predicted as background, every background pixel is right.
    crack_iou, background_iou = 138 / 180, 1188 / (1188 + 42)
    mean_iou = (crack_iou + background_iou) / 2
    assert results["sem_seg"]["mean_iou"] == pytest.approx(mean_iou)
    assert f"{mean_iou:.4f}" in page and f"{100 * mean_iou:.2f}" in page  # HALCON's and detectron2's
    assert f"{crack_iou:.4f}" in page and "border <span class='muted'>(ignored)</span>" in page
    # Worst first: b (30 wrong), then c (12); a (perfect) is left out with --worst 2.
    captions = re.findall(r"<figcaption>(\w+): mean IoU", page)
    assert captions == ["b", "c"]
    # Every picture is embedded and decodes: confusion matrix, training curves, 2 worst images.
    uris = re.findall(r"src='data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)'", page)
    assert len(uris) == 4
    for _, data in uris:
        assert cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR) is not None
    assert "http" not in page.replace("http-equiv", "")  # nothing to fetch: the file can be mailed


def test_pred_without_dataset_is_one_clear_error(evaluated, capsys):
    tmp_path, _, _ = evaluated
    from segdet.utils.cli import run_cli

    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: tool_main("report", "--results", tmp_path / "results.json", "--pred", tmp_path / "pred",
                                  "--output", tmp_path / "x.html"))
    assert exit_info.value.code == 2
    assert "--pred needs --dataset" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian's 'chromium') is not installed")
def test_report_renders_in_headless_chromium(evaluated):
    tmp_path, name, results = evaluated
    page = write_report(tmp_path, name)
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,2200"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f"{results['sem_seg']['mean_iou']:.4f}" in dom.stdout and "crack" in dom.stdout
    assert dom.stdout.count("<img") == 4
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120,
                   check=True)
    picture = cv2.imread(str(shot))
    assert picture is not None and picture.shape[:2] == (2200, 1100)
    # The confusion matrix's "Blues" cells were drawn: dark blue pixels (matplotlib's Blues at 1.0 is
    # (8, 48, 107) RGB) appear in the rendered page.
    b, g, r = picture[..., 0].astype(int), picture[..., 1].astype(int), picture[..., 2].astype(int)
    assert ((b > 90) & (r < 40) & (g < 70)).sum() > 100
