"""One self-contained HTML page of an evaluation, to open in a browser or to mail.

    html = evaluation_report(results, metadata, title="demo_fruit_test", metrics_path="output/metrics.json",
                             worst=worst_images(pairs, predictions, metadata, codec))
    write_report(html, "report.html")

The page holds: the measures under HALCON's names and detectron2's keys; COCO AP and PQ when
the results have them; a per-class table with IoU bars; the pixel confusion matrix; the
training curves of a `metrics.json`; and the worst images by IoU with their image / ground
truth / prediction / error pictures. Every picture is embedded (plots as PNG, pictures of
images as JPEG; base64), the style is inline: the file needs nothing else.
"""
from __future__ import annotations

import base64
import datetime
import html
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

from segdet.data.label_codec import LabelCodec
from segdet.errors import DataError
from segdet.evaluation.sem_seg_evaluation import evaluate_prediction_files
from segdet.structures.metadata import Metadata
from segdet.utils.files import atomic_write_text
from segdet.utils.image_io import read_image

logger = logging.getLogger(__name__)

# HALCON's measure names and detectron2's keys for the same values (fractions vs percentages).
SEMANTIC_MEASURES = (
    ("pixel_accuracy", "pACC"),
    ("mean_accuracy", "mACC"),
    ("mean_iou", "mIoU"),
    ("frequency_weighted_iou", "fwIoU"),
    ("boundary_iou", "BoundaryIoU"),
)
_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #222; }
h1 { font-size: 24px; } h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: right; font-size: 14px; }
th { background: #f4f4f4; } td.name { text-align: left; }
.bar { display: inline-block; height: 12px; background: #4a7fb5; vertical-align: middle; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #555; vertical-align: middle;
          margin-right: 6px; }
.muted { color: #888; } img { max-width: 100%; height: auto; border: 1px solid #ddd; box-sizing: border-box; }
figure { margin: 12px 0 24px; } figcaption { font-size: 14px; color: #444; }
"""


@dataclass
class WorstImage:
    """One image of the ranking, with its image | ground truth | prediction | errors picture."""

    image_id: str
    mean_iou: float
    pixel_accuracy: float
    picture: np.ndarray


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None or value < 0 else f"{value:.{digits}f}"


# Pictures of images are embedded as JPEG at most this wide: a page with a few of them stays small
# enough to mail (a 480x360 image's five-panel picture is 4800 px wide, 4 MB as PNG).
PICTURE_MAX_WIDTH = 1600
JPEG_QUALITY = 88


def picture_data_uri(rgb: np.ndarray, max_width: int = PICTURE_MAX_WIDTH) -> str:
    """An RGB uint8 picture as a `data:image/jpeg;base64,...` URI, scaled down to `max_width`."""
    h, w = rgb.shape[:2]
    if w > max_width:
        rgb = cv2.resize(rgb, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DataError("cannot encode a report picture as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.tobytes()).decode("ascii")


def _file_data_uri(path: str) -> str:
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


def _plot_uri(plot) -> str:
    """The data URI of a PNG that `plot(path)` writes (segdet.visualization's plots write files)."""
    with tempfile.TemporaryDirectory(prefix="segdet-report-") as folder:
        path = os.path.join(folder, "figure.png")
        plot(path)
        return _file_data_uri(path)


def _class_names(sem_seg: dict, metadata: Optional[Metadata]) -> list[str]:
    n = len(sem_seg["class_iou"])
    if metadata is not None:
        if metadata.num_classes != n:
            raise DataError(f"the results have {n} classes but dataset '{metadata.name}' has {metadata.num_classes}")
        return list(metadata.class_names)
    names = [key[len("IoU-"):] for key in sem_seg if key.startswith("IoU-")]
    return names if len(names) == n else [f"class_{i}" for i in range(n)]


def _measures_table(sem_seg: dict) -> str:
    rows = []
    for halcon, d2 in SEMANTIC_MEASURES:
        if halcon in sem_seg:
            rows.append(f"<tr><td class='name'>{halcon}</td><td>{_fmt(sem_seg[halcon])}</td>"
                        f"<td class='name'>{d2}</td><td>{_fmt(sem_seg.get(d2), 2)}</td></tr>")
    return ("<table><tr><th>HALCON measure</th><th>value</th><th>detectron2 key</th><th>%</th></tr>"
            + "".join(rows) + "</table>")


def _task_tables(results: dict) -> str:
    """COCO AP (bbox, segm) and panoptic quality: their scalar measures."""
    parts = []
    for task in ("bbox", "segm", "panoptic_seg"):
        measures = results.get(task)
        if not isinstance(measures, dict):
            continue
        rows = "".join(f"<tr><td class='name'>{html.escape(k)}</td><td>{_fmt(float(v), 2)}</td></tr>"
                       for k, v in measures.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
        parts.append(f"<h3>{task}</h3><table><tr><th>measure</th><th>value</th></tr>{rows}</table>")
    return "".join(parts)


def _class_table(sem_seg: dict, names: Sequence[str], ignore: set[int],
                 colors: Optional[Sequence[Sequence[int]]]) -> str:
    conf = np.asarray(sem_seg.get("pixel_confusion_matrix", np.zeros((len(names), len(names)))), dtype=np.int64)
    boundary = sem_seg.get("class_boundary_iou")
    head = "<tr><th>id</th><th>class</th><th>IoU</th><th></th><th>accuracy</th>"
    head += "<th>boundary IoU</th>" if boundary is not None else ""
    head += "<th>ground-truth pixels</th><th>predicted pixels</th></tr>"
    rows = []
    for c, name in enumerate(names):
        iou = sem_seg["class_iou"][c]
        swatch = (f"<span class='swatch' style='background: rgb{tuple(int(v) for v in colors[c])}'></span>"
                  if colors is not None else "")
        label = html.escape(name) + (" <span class='muted'>(ignored)</span>" if c in ignore else "")
        bar = f"<span class='bar' style='width: {int(round(200 * iou))}px'></span>" if iou is not None and iou >= 0 \
            else "<span class='muted'>n/a</span>"
        row = (f"<tr><td>{c}</td><td class='name'>{swatch}{label}</td><td>{_fmt(iou)}</td>"
               f"<td class='name' style='width: 210px'>{bar}</td><td>{_fmt(sem_seg['class_pixel_accuracy'][c])}</td>")
        if boundary is not None:
            row += f"<td>{_fmt(boundary[c])}</td>"
        row += f"<td>{int(conf[c].sum())}</td><td>{int(conf[:, c].sum())}</td></tr>"
        rows.append(row)
    return "<table>" + head + "".join(rows) + "</table>"


def evaluation_report(results: dict, metadata: Optional[Metadata] = None, title: str = "Evaluation",
                      metrics_path: Optional[str] = None, worst: Iterable[WorstImage] = (),
                      source: str = "") -> str:
    """The HTML page of an evaluation.

    Args:
        results: an evaluation's results (`{"sem_seg": {...}, "segm": ..., ...}`, as results.json).
        metadata: the dataset's classes (names, colors, ignore classes); None = names from the results.
        title: the page title (e.g. the dataset's name).
        metrics_path: a training run's metrics.json, for the training curves.
        worst: the worst images (`worst_images`), worst first.
        source: where the results come from, shown under the title.
    """
    from segdet.visualization.confusion import plot_confusion_matrix
    from segdet.visualization.plots import plot_metrics

    sem_seg = results.get("sem_seg")
    if not isinstance(sem_seg, dict) or "class_iou" not in sem_seg:
        raise DataError("the results hold no semantic segmentation measures ('sem_seg' with 'class_iou')")
    names = _class_names(sem_seg, metadata)
    ignore = set(metadata.ignore_class_ids) if metadata is not None else set()
    colors = metadata.class_colors if metadata is not None else None
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p class='muted'>{html.escape(source)} {'&middot; ' if source else ''}written {when} by segdet</p>",
            "<h2>Measures</h2>", _measures_table(sem_seg), _task_tables(results),
            "<h2>Per class</h2>", _class_table(sem_seg, names, ignore, colors)]
    conf = sem_seg.get("pixel_confusion_matrix")
    if conf is not None:
        uri = _plot_uri(lambda path: plot_confusion_matrix(np.asarray(conf), names, path, sorted(ignore),
                                                           title="Pixel confusion matrix"))
        body += ["<h2>Confusion matrix</h2>",
                 f"<figure><img alt='pixel confusion matrix' src='{uri}'><figcaption>Rows: ground truth; "
                 "columns: prediction; colors: share of the row.</figcaption></figure>"]
    if metrics_path:
        uri = _plot_uri(lambda path: plot_metrics(metrics_path, path))
        body += ["<h2>Training</h2>", f"<figure><img alt='training curves' src='{uri}'>"
                 f"<figcaption>{html.escape(metrics_path)}</figcaption></figure>"]
    worst = list(worst)
    if worst:
        body.append(f"<h2>The {len(worst)} worst images by mean IoU</h2>")
        for w in worst:
            body.append(f"<figure><img alt='{html.escape(w.image_id)}' src='{picture_data_uri(w.picture)}'><figcaption>"
                        f"{html.escape(w.image_id)}: mean IoU {_fmt(w.mean_iou)}, pixel accuracy "
                        f"{_fmt(w.pixel_accuracy)}</figcaption></figure>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def worst_images(pairs: dict[str, tuple[str, str]], predictions: dict[str, str], metadata: Metadata,
                 prediction_codec: Optional[LabelCodec] = None, count: int = 6) -> list[WorstImage]:
    """The `count` images whose predictions have the lowest mean IoU, with their pictures.

    Args:
        pairs: name -> (image file, ground-truth file) (`segdet.data.ground_truth`).
        predictions: name -> prediction file (`segdet.data.prediction_folder.prediction_files`);
            every prediction needs a pair.
        metadata: classes and ignore classes; its label format decodes the ground truth.
        prediction_codec: decodes the predictions; None = the metadata's codec.
    """
    from segdet.visualization.panels import prediction_panel

    ground_truth = {name: pairs[name][1] for name in predictions if name in pairs}
    _, evaluator = evaluate_prediction_files(ground_truth, {n: predictions[n] for n in ground_truth}, metadata,
                                             prediction_codec, per_image=True)
    gt_codec, pred_codec = LabelCodec(metadata), prediction_codec or LabelCodec(metadata)
    ranked = []
    for entry in evaluator.per_image_results[:count]:
        name = str(entry["image_id"])
        image_file, gt_file = pairs[name]
        picture = prediction_panel(read_image(image_file), gt_codec.read(gt_file), pred_codec.read(predictions[name]),
                                   metadata, title=name)
        ranked.append(WorstImage(name, float(entry["mean_iou"]), float(entry["pixel_accuracy"]), picture))
    return ranked


def write_report(html_text: str, path: str) -> str:
    """Write the page atomically; returns the path."""
    return atomic_write_text(html_text, path)
