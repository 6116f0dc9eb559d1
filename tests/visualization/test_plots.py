"""PNG plots of evaluation results and training metrics: files of the expected size, not blank."""
import json

import cv2
import numpy as np
import pytest

from segdet.errors import DataError
from segdet.utils.files import write_json
from segdet.evaluation.sem_seg_measures import detectron2_keys, segmentation_measures
from segdet.visualization.plots import (
    class_names_from_results,
    plot_class_iou,
    plot_evaluation,
    plot_metrics,
    read_metrics,
)

NAMES = ["background", "orange", "lemon", "border"]
# Rows: ground truth, columns: prediction. "border" (3) is an ignore class: its row is empty.
CONF = np.array([[50, 2, 3, 0],
                 [4, 20, 1, 0],
                 [0, 5, 15, 0],
                 [0, 0, 0, 0]])


def read_png(path):
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a readable image"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def assert_not_blank(image):
    assert not np.all(image == 255), "the picture is all white"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 2, "the picture has at most two colors"


def sem_seg_results():
    measures = segmentation_measures(CONF, ignore_class_ids=[3])
    return {**measures, **detectron2_keys(measures, NAMES)}


def test_plot_class_iou_draws_bars_in_class_colors(tmp_path):
    results = sem_seg_results()
    assert results["class_iou"][3] == -1  # the ignore class: "n/a"
    colors = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
    path = plot_class_iou(results, NAMES, str(tmp_path / "iou.png"), ignore_class_ids=[3], class_colors=colors)
    image = read_png(path)
    # Figure 7.5 x max(2.5, 0.38 * 4 + 1.4) inches at 100 dpi.
    assert image.shape == (292, 750, 3)
    assert_not_blank(image)
    pixels = {tuple(p) for p in image.reshape(-1, 3)}
    for k in range(3):
        assert colors[k] in pixels, f"no bar in the color of {NAMES[k]}"
    assert colors[3] not in pixels  # the n/a class has no bar


def test_plot_class_iou_accepts_whole_results_and_checks_names(tmp_path):
    results = {"sem_seg": sem_seg_results()}
    assert plot_class_iou(results, NAMES, str(tmp_path / "a.png")) == str(tmp_path / "a.png")
    with pytest.raises(DataError, match="4 class IoU values but 2 class names"):
        plot_class_iou(results, NAMES[:2], str(tmp_path / "b.png"))
    with pytest.raises(DataError, match="class_iou"):
        plot_class_iou({"bbox": {}}, NAMES, str(tmp_path / "c.png"))


def test_class_names_come_from_the_results_keys():
    assert class_names_from_results(sem_seg_results()) == NAMES
    assert class_names_from_results({"class_iou": [0.5, 0.2]}) is None


def test_plot_evaluation_writes_iou_bars_and_confusion_heat_map(tmp_path):
    results_file = write_json({"sem_seg": sem_seg_results(), "bbox": {"AP": 12.0}}, str(tmp_path / "results.json"))
    paths = plot_evaluation(results_file, str(tmp_path / "out"))
    assert [p.rsplit("/", 1)[1] for p in paths] == ["class_iou.png", "confusion_matrix.png"]
    for path in paths:
        assert_not_blank(read_png(path))
    # Without class names in the JSON, class_<i>; given names must fit the class count.
    bare = {k: v for k, v in sem_seg_results().items() if "-" not in k}
    bare_file = write_json({"sem_seg": bare}, str(tmp_path / "bare.json"))
    assert len(plot_evaluation(bare_file, str(tmp_path / "bare"))) == 2
    with pytest.raises(DataError, match="4 classes, but 3 class names"):
        plot_evaluation(bare_file, str(tmp_path / "bad"), class_names=["a", "b", "c"])


def test_plot_evaluation_bad_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        plot_evaluation(str(tmp_path / "missing.json"), str(tmp_path))
    (tmp_path / "broken.json").write_text("{\"sem_seg\": ")
    with pytest.raises(DataError, match="not valid JSON"):
        plot_evaluation(str(tmp_path / "broken.json"), str(tmp_path))
    (tmp_path / "segm.json").write_text(json.dumps({"segm": {"AP": 3.0}}))
    with pytest.raises(DataError, match="no semantic segmentation results"):
        plot_evaluation(str(tmp_path / "segm.json"), str(tmp_path))


def write_metrics(path):
    lines = []
    for it in range(19, 200, 20):
        record = {"iteration": it, "total_loss": 2.0 / (1 + it / 40), "loss_sem_seg": 1.0 / (1 + it / 30),
                  "lr": 1e-3, "time": 0.5}
        if it == 59:
            del record["loss_sem_seg"]  # a line without some keys
        if (it + 1) % 100 == 0:
            record.update({"sem_seg/mean_iou": 0.4 + it / 1000, "sem_seg/mIoU": 40 + it / 10,
                           "sem_seg/IoU-orange": 30.0, "segm/AP": 10.0 + it / 20})
        lines.append(json.dumps(record))
    path.write_text("\n".join(lines) + '\n{"iteration": 219, "total_lo')  # truncated last line
    return path


def test_read_metrics_skips_the_truncated_last_line(tmp_path):
    records = read_metrics(str(write_metrics(tmp_path / "metrics.json")))
    assert [r["iteration"] for r in records] == list(range(19, 200, 20))


def test_plot_metrics_loss_and_validation_axes(tmp_path):
    path = plot_metrics(str(write_metrics(tmp_path / "metrics.json")), str(tmp_path / "curves.png"))
    image = read_png(path)
    # 11 inches wide; losses (1.4) + sem_seg + segm (1 each) rows of 2.7 inches, + 0.4, at 100 dpi.
    assert image.shape == (int(round(100 * (2.7 * 3.4 + 0.4))), 1100, 3)
    assert_not_blank(image)


def test_plot_metrics_with_losses_only_is_one_axes(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text("\n".join(json.dumps({"iteration": i, "total_loss": 1.0 / (i + 1)}) for i in range(5)))
    image = read_png(plot_metrics(str(metrics), str(tmp_path / "loss.png")))
    assert image.shape == (int(round(100 * (2.7 * 1.4 + 0.4))), 1100, 3)
    assert_not_blank(image)


def test_plot_metrics_without_values_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        plot_metrics(str(tmp_path / "none.json"), str(tmp_path / "x.png"))
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"iteration": 0, "time": 1.0}) + "\n")
    with pytest.raises(DataError, match="no loss or validation values"):
        plot_metrics(str(metrics), str(tmp_path / "x.png"))


def test_undefined_validation_measures_are_not_plotted():
    from segdet.visualization.plots import _series

    series = _series([{"iteration": 9, "segm/APl": -1.0, "segm/AP": 50.0, "loss_mask": 0.5},
                      {"iteration": 19, "segm/APl": -1.0, "segm/AP": 60.0}])
    assert "segm/APl" not in series
    assert series["segm/AP"][1].tolist() == [50.0, 60.0]
    assert series["loss_mask"][0].tolist() == [9]
