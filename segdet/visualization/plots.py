"""Plots of evaluation results and training metrics, as PNG files (matplotlib, no display).

- `plot_class_iou`: IoU per class as horizontal bars, the mean IoU as a line.
- `plot_evaluation`: an evaluation results JSON -> IoU bars + confusion-matrix heat map
  (HALCON's dev_display_segmentation_evaluation).
- `plot_metrics`: a training run's metrics.json -> loss curves and validation measures.
"""
from __future__ import annotations

import json
import logging
import math
import os
from typing import Any, Iterable, Optional, Sequence

import numpy as np
# The Agg canvas directly, not pyplot: no display is needed, and the global backend of a
# user's session (e.g. a notebook) is left alone.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from segdet.errors import DataError
from segdet.utils.files import atomic_write

logger = logging.getLogger(__name__)

CLASS_IOU_FILE = "class_iou.png"
CONFUSION_FILE = "confusion_matrix.png"

# detectron2's percentage duplicates of the semantic measures; the HALCON fractions are plotted.
_DETECTRON2_DUPLICATES = {"mIoU": "mean_iou", "fwIoU": "frequency_weighted_iou", "mACC": "mean_accuracy",
                          "pACC": "pixel_accuracy"}
# metrics.json scalars that are neither losses nor measures.
_NOT_PLOTTED = {"iteration", "time", "data_time", "eta_seconds"}


def _save(fig: Figure, path: str, dpi: int = 100) -> str:
    """Write a figure atomically (temp file + rename), creating folders."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi))


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def plot_class_iou(
    results: dict,
    class_names: Sequence[str],
    path: str,
    ignore_class_ids: Iterable[int] = (),
    class_colors: Optional[Sequence[Sequence[int]]] = None,
    title: Optional[str] = None,
) -> str:
    """Horizontal bars of the IoU of every class, with its value; the mean IoU as a vertical line.

    Args:
        results: the `sem_seg` results (`class_iou` list by class id, -1 = undefined,
            `mean_iou`), or a whole results dict holding `sem_seg`.
        class_names: one name per class id.
        path: PNG file to write.
        ignore_class_ids: classes shown as "n/a (ignored)".
        class_colors: RGB bar color per class; None = one color.
        title: picture title.
    Returns:
        `path`.
    """
    sem_seg = results.get("sem_seg", results) if isinstance(results, dict) else None
    if not isinstance(sem_seg, dict) or "class_iou" not in sem_seg:
        raise DataError("results hold no 'class_iou' (expected the 'sem_seg' results of an evaluation)")
    iou = [(-1.0 if v is None else float(v)) for v in sem_seg["class_iou"]]
    if len(iou) != len(class_names):
        raise DataError(f"results have {len(iou)} class IoU values but {len(class_names)} class names were given")
    ignore = set(int(i) for i in ignore_class_ids)
    n = len(iou)

    fig = _new_figure(7.5, max(2.5, 0.38 * n + 1.4))
    ax = fig.add_subplot()
    y = np.arange(n)
    values = np.array([max(v, 0.0) for v in iou])
    if class_colors is not None:
        colors = [tuple(float(c) / 255.0 for c in class_colors[i]) for i in range(n)]
    else:
        colors = ["#4a7fb5"] * n
    bars = ax.barh(y, values, color=colors, edgecolor="#333333", linewidth=0.6)
    for i, (bar, v) in enumerate(zip(bars, iou)):
        if v < 0:
            bar.set_visible(False)
            text = "n/a (ignored)" if i in ignore else "n/a"
            ax.text(0.01, i, text, va="center", ha="left", fontsize=9, color="#777777", style="italic")
        else:
            ax.text(min(v, 1.0) + 0.01, i, f"{v:.3f}", va="center", ha="left", fontsize=9)
    ax.set_yticks(y)
    ax.set_yticklabels([str(name) + (" (ignored)" if i in ignore else "") for i, name in enumerate(class_names)])
    ax.invert_yaxis()  # class 0 on top, as in a table
    ax.set_xlim(0.0, 1.12)
    ax.set_xlabel("IoU")
    mean_iou = sem_seg.get("mean_iou")
    if mean_iou is not None and float(mean_iou) >= 0:
        ax.axvline(float(mean_iou), color="#c0392b", linestyle="--", linewidth=1.5,
                   label=f"mean IoU {float(mean_iou):.3f}")
        ax.legend(loc="lower right", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or "IoU per class")
    fig.tight_layout()
    return _save(fig, path)


def _read_json(path: str, what: str) -> Any:
    if not os.path.isfile(path):
        raise DataError(f"{what} not found: {path}")
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{what} {path} is not valid JSON: {e}") from None


def class_names_from_results(sem_seg: dict) -> Optional[list[str]]:
    """Class names from the `IoU-<name>` keys of `sem_seg` results (written in class-id order),
    or None when they do not give one name per class."""
    names = [key[len("IoU-"):] for key in sem_seg if key.startswith("IoU-")]
    return names if len(names) == len(sem_seg.get("class_iou", [])) else None


def plot_evaluation(results_json_path: str, out_dir: str, class_names: Optional[Sequence[str]] = None) -> list[str]:
    """IoU bars and the confusion heat map of an evaluation results JSON.

    Reads the `sem_seg` results of `OUTPUT_DIR/inference/<dataset>/results.json` (or of
    `tools/eval_predictions.py`'s output). Class names: `class_names`, else the JSON's
    `IoU-<name>` keys, else "class_<i>". The JSON does not say which classes were ignored;
    classes without any evaluated ground-truth pixel (ignore classes among them) get
    "n/a" bars and no heat-map row.

    Args:
        results_json_path: the results JSON.
        out_dir: folder for `class_iou.png` and `confusion_matrix.png`.
        class_names: one name per class id (overrides the JSON's).
    Returns:
        The paths written.
    """
    from segdet.visualization.confusion import plot_confusion_matrix

    data = _read_json(results_json_path, "results file")
    sem_seg = data.get("sem_seg") if isinstance(data, dict) else None
    if not isinstance(sem_seg, dict) or "class_iou" not in sem_seg:
        raise DataError(f"results file {results_json_path} holds no semantic segmentation results "
                        "('sem_seg' with 'class_iou')")
    n = len(sem_seg["class_iou"])
    if class_names is not None:
        names = [str(c) for c in class_names]
        if len(names) != n:
            raise DataError(f"results file {results_json_path} has {n} classes, but {len(names)} class names "
                            "were given")
    else:
        names = class_names_from_results(sem_seg) or [f"class_{i}" for i in range(n)]
    written = [plot_class_iou(sem_seg, names, os.path.join(out_dir, CLASS_IOU_FILE))]
    conf = sem_seg.get("pixel_confusion_matrix")
    if conf is not None:
        conf = np.asarray(conf, dtype=np.int64)
        if conf.shape != (n, n):
            raise DataError(f"results file {results_json_path}: pixel_confusion_matrix has shape {conf.shape}, "
                            f"expected {n}x{n}")
        empty_rows = [i for i in range(n) if not conf[i].any()]
        written.append(plot_confusion_matrix(conf, names, os.path.join(out_dir, CONFUSION_FILE), empty_rows,
                                             title="Pixel confusion matrix"))
    else:
        logger.warning("results file %s has no pixel_confusion_matrix; no heat map drawn", results_json_path)
    return written


def read_metrics(metrics_json_path: str) -> list[dict]:
    """The records of a metrics.json (one JSON object per line), skipping unreadable lines.

    A truncated last line (a run still writing, or killed) is skipped silently; another
    unreadable line is skipped with a warning.
    """
    if not os.path.isfile(metrics_json_path):
        raise DataError(f"metrics file not found: {metrics_json_path}")
    with open(metrics_json_path, errors="replace") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    records = []
    for k, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if k != len(lines) - 1:
                logger.warning("metrics file %s: line %d is not JSON; skipped", metrics_json_path, k + 1)
            continue
        if isinstance(record, dict) and isinstance(record.get("iteration"), (int, float)):
            records.append(record)
    return records


def _series(records: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """key -> (iterations, values), finite numbers only; a repeated iteration keeps its last value.

    Validation measures (keys with "/") of -1 mean "not defined" (e.g. no large objects for APl)
    and are left out; a key with no defined value gets no curve.
    """
    points: dict[str, dict[int, float]] = {}
    for record in records:
        it = int(record["iteration"])
        for key, value in record.items():
            if key in _NOT_PLOTTED or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value) and not ("/" in key and value < 0):
                points.setdefault(key, {})[it] = float(value)
    return {key: (np.array(sorted(p)), np.array([p[i] for i in sorted(p)])) for key, p in points.items()}


def _is_summary_measure(key: str, keys: set[str]) -> bool:
    """A validation key worth a curve: not per class (`IoU-<class>`), not a detectron2 duplicate."""
    group, _, name = key.rpartition("/")
    if "-" in name:
        return False
    twin = _DETECTRON2_DUPLICATES.get(name)
    return not (twin and f"{group}/{twin}" in keys)


def plot_metrics(metrics_json_path: str, out_path: str) -> str:
    """Loss curves and validation measures of a training run.

    Top: every key containing "loss" against the iteration (log scale), and the learning
    rate on a second y axis. Below: the validation measures (keys with "/", e.g.
    `sem_seg/mean_iou`, `segm/AP`, `panoptic_seg/PQ`), one axes per task since their scales
    differ (fractions vs percentages). Per-class values and detectron2's percentage
    duplicates of the semantic measures are left out.

    Args:
        metrics_json_path: `OUTPUT_DIR/metrics.json`.
        out_path: PNG file to write.
    Returns:
        `out_path`.
    """
    records = read_metrics(metrics_json_path)
    series = _series(records)
    losses = sorted(k for k in series if "loss" in k and "/" not in k)
    keys = set(series)
    measures = sorted(k for k in keys if "/" in k and _is_summary_measure(k, keys))
    if not losses and not measures:
        raise DataError(f"metrics file {metrics_json_path} holds no loss or validation values "
                        f"({len(records)} readable records)")
    groups: dict[str, list[str]] = {}
    for key in measures:
        groups.setdefault(key.rpartition("/")[0], []).append(key)

    # Semantic measures first: every model has them.
    order = sorted(groups, key=lambda g: (not g.endswith("sem_seg"), g))
    heights = ([1.4] if losses else []) + [1.0] * len(groups)
    fig = _new_figure(11.0, 2.7 * sum(heights) + 0.4)
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights)
    index = 0
    first = None  # every axes shares the iteration range of the first
    # Legends outside the axes (right of the lr axis when there is one): every curve stays visible.
    legend_x = 1.13 if losses and "lr" in series else 1.01
    if losses:
        ax = first = fig.add_subplot(grid[index])
        index += 1
        for key in losses:
            its, values = series[key]
            style = dict(linewidth=2.2, color="black") if key == "total_loss" else dict(linewidth=1.3)
            ax.plot(its, values, label=key, **style)
        if any(series[k][1].min() > 0 for k in losses):
            ax.set_yscale("log", nonpositive="mask")
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.set_title("Training losses")
        ax.grid(True, which="both", alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if "lr" in series:
            twin = ax.twinx()
            its, values = series["lr"]
            (line,) = twin.plot(its, values, color="#888888", linestyle=":", linewidth=1.5, label="lr")
            twin.set_ylabel("learning rate")
            twin.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            handles.append(line)
            labels.append("lr")
        ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(legend_x, 1.0))
    for group in order:
        group_keys = groups[group]
        ax = fig.add_subplot(grid[index], sharex=first)
        first = first or ax
        index += 1
        for key in group_keys:
            its, values = series[key]
            ax.plot(its, values, marker="o", markersize=4, linewidth=1.3, label=key.rpartition("/")[2])
        ax.set_xlabel("iteration")
        ax.set_title(f"Validation: {group}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(legend_x, 1.0))
    fig.tight_layout()
    return _save(fig, out_path)
