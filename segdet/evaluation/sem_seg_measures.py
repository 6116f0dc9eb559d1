"""Semantic segmentation measures (HALCON's definitions), as pure functions.

Everything is computed from a pixel confusion matrix (rows: ground-truth class,
columns: predicted class) accumulated over all evaluated images, as if they were
one large image. Ground-truth pixels of ignore classes take no part in any
measure; the rows of ignore classes are therefore always zero. A class with no
ground-truth pixel (and every ignore class) gets -1 in the per-class measures
and does not count in the means.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import cv2
import numpy as np

from segdet.errors import DataError

ABSENT = -1.0


def _bad_values(values: np.ndarray, num_classes: int) -> list[int]:
    flat = values.ravel()
    bad = flat[(flat < 0) | (flat >= num_classes)]
    return [int(v) for v in np.unique(bad)[:10]]


def _all_below(values: np.ndarray, n: int) -> bool:
    """Whether every value is in 0..n-1, in one pass over the array: signed integers are read
    as unsigned ones of the same size, which turns negatives into huge values."""
    if values.dtype.kind == "i":
        values = values.view(f"u{values.dtype.itemsize}")
    elif values.dtype.kind != "u":
        return int(values.min()) >= 0 and int(values.max()) < n
    return int(values.max()) < n


def confusion_matrix(
    gt: np.ndarray,
    pred: np.ndarray,
    num_classes: int,
    ignore_class_ids: Iterable[int] = (),
    allow_predicted_ignore: bool = False,
) -> np.ndarray:
    """Pixel confusion matrix of one image (or of any set of pixels).

    Args:
        gt: ground-truth class ids, any shape.
        pred: predicted class ids, same shape as `gt`.
        num_classes: N, ignore classes included.
        ignore_class_ids: classes whose ground-truth pixels are left out.
        allow_predicted_ignore: if False, a predicted ignore class is an error (a
            model never predicts one); if True, such pixels count as wrong predictions.
    Returns:
        int64 NxN matrix, [gt class, predicted class] -> pixel count.
    Raises:
        DataError: shapes differ, a value is not a class id, or an ignore class is predicted.
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.shape != pred.shape:
        raise DataError(f"prediction has size {pred.shape} but the ground truth has size {gt.shape}")
    n = int(num_classes)
    for what, values in (("ground truth", gt), ("prediction", pred)):
        if values.size and not _all_below(values, n):
            raise DataError(f"{what} holds value(s) {_bad_values(values, n)} that are not class ids 0..{n - 1}")
    # One bincount over gt * N + pred; ignore rows are cleared afterwards, which equals
    # dropping those pixels first and avoids a boolean-mask copy of the image. The index is
    # built in place in gt's int64 copy, and an int64 prediction is used as it is.
    index = gt.astype(np.int64).ravel()
    index *= n
    index += pred.astype(np.int64, copy=False).ravel()
    conf = np.bincount(index, minlength=n * n).reshape(n, n)
    ignore = sorted(set(int(i) for i in ignore_class_ids))
    if ignore:
        if not allow_predicted_ignore and conf[:, ignore].any():
            predicted = [i for i in ignore if conf[:, i].any()]
            raise DataError(
                f"prediction holds ignore class id(s) {predicted}; ignore classes are never predicted"
            )
        conf[ignore, :] = 0
    return conf


def segmentation_measures(conf: np.ndarray, ignore_class_ids: Iterable[int] = ()) -> dict:
    """HALCON's semantic segmentation measures from a confusion matrix.

    Args:
        conf: NxN pixel confusion matrix (rows ground truth, columns prediction).
        ignore_class_ids: ignore classes; their measures are -1.
    Returns:
        dict with `pixel_accuracy`, `class_pixel_accuracy` (list, by class id),
        `mean_accuracy`, `class_iou` (list), `mean_iou`, `frequency_weighted_iou`
        and `pixel_confusion_matrix` (list of lists of ints). Fractions in [0, 1];
        -1 where a measure is not defined (no ground-truth pixel at all, or per class:
        no ground-truth pixel of that class, or an ignore class).
    """
    conf = np.asarray(conf, dtype=np.int64).copy()
    n = conf.shape[0]
    ignore = sorted(set(int(i) for i in ignore_class_ids))
    conf[ignore, :] = 0
    tp = np.diag(conf).astype(np.float64)
    gt_count = conf.sum(axis=1).astype(np.float64)
    pred_count = conf.sum(axis=0).astype(np.float64)
    present = gt_count > 0  # ignore classes have empty rows, so they are never present
    total = gt_count.sum()

    class_acc = np.full(n, ABSENT)
    class_iou = np.full(n, ABSENT)
    class_acc[present] = tp[present] / gt_count[present]
    union = gt_count + pred_count - tp
    class_iou[present] = tp[present] / union[present]

    if total > 0:
        pixel_accuracy = float(tp.sum() / total)
        mean_accuracy = float(class_acc[present].mean())
        mean_iou = float(class_iou[present].mean())
        fw_iou = float((gt_count[present] / total * class_iou[present]).sum())
    else:
        pixel_accuracy = mean_accuracy = mean_iou = fw_iou = ABSENT
    return {
        "pixel_accuracy": pixel_accuracy,
        "class_pixel_accuracy": [float(v) for v in class_acc],
        "mean_accuracy": mean_accuracy,
        "class_iou": [float(v) for v in class_iou],
        "mean_iou": mean_iou,
        "frequency_weighted_iou": fw_iou,
        "pixel_confusion_matrix": conf.tolist(),
    }


def _percent(value: float) -> float:
    return ABSENT if value < 0 else 100.0 * value


def detectron2_keys(measures: dict, class_names: Sequence[str]) -> dict:
    """The same measures under detectron2's SemSegEvaluator keys, as percentages.

    `mIoU`, `fwIoU`, `mACC`, `pACC`, `IoU-<name>`, `ACC-<name>`, and when boundary
    IoU was computed `BoundaryIoU` and `BoundaryIoU-<name>`. Undefined values stay -1
    (detectron2 writes NaN). As in detectron2, a class without ground-truth pixels
    is left out of the means.
    """
    out = {
        "mIoU": _percent(measures["mean_iou"]),
        "fwIoU": _percent(measures["frequency_weighted_iou"]),
    }
    for name, value in zip(class_names, measures["class_iou"]):
        out[f"IoU-{name}"] = _percent(value)
    out["mACC"] = _percent(measures["mean_accuracy"])
    out["pACC"] = _percent(measures["pixel_accuracy"])
    for name, value in zip(class_names, measures["class_pixel_accuracy"]):
        out[f"ACC-{name}"] = _percent(value)
    if "boundary_iou" in measures:
        out["BoundaryIoU"] = _percent(measures["boundary_iou"])
        for name, value in zip(class_names, measures["class_boundary_iou"]):
            out[f"BoundaryIoU-{name}"] = _percent(value)
    return out


def inner_boundary(mask: np.ndarray, width: int) -> np.ndarray:
    """Pixels of `mask` within `width` px (chessboard distance) of a pixel outside it.

    The image frame is not a boundary: a region that touches the frame has no band there.
    """
    mask_u8 = np.ascontiguousarray(mask, dtype=np.uint8)
    kernel = np.ones((2 * width + 1, 2 * width + 1), dtype=np.uint8)
    # cv2.erode's default border value leaves pixels at the frame untouched.
    eroded = cv2.erode(mask_u8, kernel)
    return (mask_u8 > 0) & (eroded == 0)


def boundary_counts(
    gt: np.ndarray,
    pred: np.ndarray,
    num_classes: int,
    ignore_class_ids: Iterable[int] = (),
    width: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class intersection and union of the boundary bands of one image.

    Boundary IoU (Cheng et al. 2021) of class c: with G = pixels where gt is c and
    P = pixels where pred is c, and X_d = pixels of X within d px of a pixel outside X
    (`inner_boundary`), it is |G_d & P_d| / |G_d | P_d|. Pixels whose ground truth is
    an ignore class are not evaluated: they are removed from P before its band is
    taken (so a prediction that agrees with the ground truth on every evaluated pixel
    scores 1), and they then bound G and P alike.

    Args:
        gt, pred: HxW class ids (validated: use `confusion_matrix` first).
        num_classes: N.
        ignore_class_ids: ignore classes (no band is computed for them).
        width: band width d in pixels (>= 1).
    Returns:
        (intersection, union): int64 arrays of length N, to be summed over images.
    """
    if width < 1:
        raise ValueError(f"boundary width must be >= 1 px, got {width}")
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    ignore = sorted(set(int(i) for i in ignore_class_ids))
    valid = ~np.isin(gt, ignore) if ignore else np.ones(gt.shape, dtype=bool)
    inter = np.zeros(num_classes, dtype=np.int64)
    union = np.zeros(num_classes, dtype=np.int64)
    seen = np.union1d(np.unique(gt[valid]), np.unique(pred[valid]))
    for c in seen:
        c = int(c)
        if c in ignore:
            continue
        gt_band = inner_boundary(gt == c, width)
        pred_band = inner_boundary((pred == c) & valid, width)
        inter[c] = int(np.count_nonzero(gt_band & pred_band))
        union[c] = int(np.count_nonzero(gt_band | pred_band))
    return inter, union


def boundary_iou_measures(inter: np.ndarray, union: np.ndarray, gt_present: np.ndarray) -> dict:
    """`class_boundary_iou` (list, -1 where not defined) and `boundary_iou` (their mean).

    A class counts when it has ground-truth pixels and a non-empty band union (a class
    filling every evaluated image in both gt and prediction has no boundary at all).
    """
    inter = np.asarray(inter, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    counted = np.asarray(gt_present, dtype=bool) & (union > 0)
    per_class = np.full(len(inter), ABSENT)
    per_class[counted] = inter[counted] / union[counted]
    mean = float(per_class[counted].mean()) if counted.any() else ABSENT
    return {"boundary_iou": mean, "class_boundary_iou": [float(v) for v in per_class]}


def image_summary(conf: np.ndarray, ignore_class_ids: Iterable[int] = ()) -> dict:
    """Pixel accuracy and mean IoU of one image's confusion matrix (for per-image ranking)."""
    m = segmentation_measures(conf, ignore_class_ids)
    return {"pixel_accuracy": m["pixel_accuracy"], "mean_iou": m["mean_iou"]}
