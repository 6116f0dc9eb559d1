"""Panoptic quality (PQ, SQ, RQ), implemented from the COCO panoptic definition.

Kirillov et al., "Panoptic Segmentation" (2019), as the COCO panoptic evaluation
applies it, per image:
- a predicted and a ground-truth segment of the same category match when their IoU
  is > 0.5 (so a match is unique); the IoU leaves out the predicted segment's pixels
  that are VOID in the ground truth;
- crowd ground-truth segments are never matched and never false negatives;
- an unmatched predicted segment whose pixels are more than half VOID, or VOID plus
  a crowd region of its category, is not a false positive;
- per category: PQ = sum IoU(TP) / (TP + FP/2 + FN/2), SQ = sum IoU(TP) / TP,
  RQ = TP / (TP + FP/2 + FN/2), summed over all images; a category with
  TP + FP + FN = 0 is left out, and PQ, SQ, RQ are the means over the others
  (all categories, things only, stuff only).

Ground truth is built per image from the dataset dict: each non-crowd instance
annotation is a thing segment; crowd annotations of one category form one crowd
segment; each stuff class present in the semantic ground truth outside the instances
is one segment. VOID: pixels of ignore classes, and pixels the semantic ground truth
labels with a thing class that no instance annotation covers.
"""
from __future__ import annotations

import logging
from typing import Iterable, Optional, Sequence

import numpy as np

from segdet.structures.metadata import Metadata
from segdet.errors import DataError
from segdet.evaluation.evaluator import DatasetEvaluator
from segdet.evaluation.ground_truth import GroundTruthLabels
from segdet.structures.masks import segmentation_to_mask
from segdet.utils import comm
from segdet.utils.arrays import to_numpy

logger = logging.getLogger(__name__)

VOID = 0
ABSENT = -1.0


def panoptic_ground_truth(
    sem_gt: np.ndarray,
    annotations: Sequence[dict],
    thing_class_ids: Iterable[int],
    ignore_class_ids: Iterable[int],
    where: str = "image",
) -> tuple[np.ndarray, dict[int, dict]]:
    """Ground-truth panoptic segmentation of one image.

    Args:
        sem_gt: HxW class ids (the decoded semantic label file).
        annotations: the dataset dict's instance annotations (`category_id`,
            `segmentation`, `iscrowd`). Where instances overlap, the earlier one keeps the pixel.
        thing_class_ids: classes with instances; every other non-ignore class is stuff.
        ignore_class_ids: their pixels are VOID.
        where: names the image in error messages.
    Returns:
        (HxW int32 segment ids, 0 = VOID; {segment id: {"category_id", "iscrowd"}}).
    """
    height, width = sem_gt.shape
    things = set(int(i) for i in thing_class_ids)
    ignore = sorted(set(int(i) for i in ignore_class_ids))
    void = np.isin(sem_gt, ignore) if ignore else np.zeros(sem_gt.shape, dtype=bool)
    seg = np.zeros((height, width), dtype=np.int32)
    segments: dict[int, dict] = {}
    taken = void.copy()
    crowd: dict[int, np.ndarray] = {}

    def add_segment(mask: np.ndarray, category: int, iscrowd: int) -> None:
        """The free pixels of `mask` as a new segment (none if no pixel is free)."""
        mask = mask & ~taken
        if mask.any():
            segment_id = len(segments) + 1
            seg[mask] = segment_id
            segments[segment_id] = {"category_id": category, "iscrowd": iscrowd}
            taken[mask] = True

    for ann in annotations:
        category = int(ann.get("category_id", -1))
        if category not in things:
            raise DataError(f"{where}: annotation category_id {category} is not a thing class {sorted(things)}")
        if ann.get("segmentation") is None:
            raise DataError(f"{where}: an instance annotation has no segmentation; panoptic evaluation needs masks")
        mask = segmentation_to_mask(ann["segmentation"], height, width, where)
        if ann.get("iscrowd", 0):
            crowd[category] = crowd.get(category, np.zeros_like(mask)) | mask
        else:
            add_segment(mask, category, 0)
    for category, mask in sorted(crowd.items()):
        add_segment(mask, category, 1)
    for category in np.unique(sem_gt[~taken]):
        category = int(category)
        if category in things:
            continue  # thing pixels without an instance stay VOID
        segment_id = len(segments) + 1
        seg[(sem_gt == category) & ~taken] = segment_id
        segments[segment_id] = {"category_id": category, "iscrowd": 0}
    return seg, segments


def pq_image_counts(
    gt_seg: np.ndarray,
    gt_segments: dict[int, dict],
    pred_seg: np.ndarray,
    pred_segments: dict[int, dict],
    num_classes: int,
) -> dict[str, np.ndarray]:
    """Per-category TP, FP, FN and sum of matched IoUs of one image.

    Args:
        gt_seg, pred_seg: HxW segment ids, 0 = VOID (unlabeled).
        gt_segments: {id: {"category_id", "iscrowd"}}.
        pred_segments: {id: {"category_id"}}; ids absent from `pred_seg` are skipped.
        num_classes: length of the returned arrays (indexed by category = class id).
    Returns:
        {"tp", "fp", "fn": int64 arrays, "iou": float64 array}.
    """
    tp = np.zeros(num_classes, dtype=np.int64)
    fp = np.zeros(num_classes, dtype=np.int64)
    fn = np.zeros(num_classes, dtype=np.int64)
    iou_sum = np.zeros(num_classes, dtype=np.float64)

    gt_flat = gt_seg.astype(np.int64).ravel()
    pred_flat = pred_seg.astype(np.int64).ravel()
    stride = int(pred_flat.max(initial=0)) + 1
    pairs, counts = np.unique(gt_flat * stride + pred_flat, return_counts=True)
    gt_area: dict[int, int] = {}
    pred_area: dict[int, int] = {}
    overlap: dict[tuple[int, int], int] = {}
    for key, count in zip(pairs.tolist(), counts.tolist()):
        g, p = divmod(key, stride)
        overlap[(g, p)] = count
        gt_area[g] = gt_area.get(g, 0) + count
        pred_area[p] = pred_area.get(p, 0) + count

    matched_gt: set[int] = set()
    matched_pred: set[int] = set()
    for (g, p), inter in overlap.items():
        if g == VOID or p == VOID or g not in gt_segments or p not in pred_segments:
            continue
        if gt_segments[g]["iscrowd"] or gt_segments[g]["category_id"] != pred_segments[p]["category_id"]:
            continue
        union = pred_area[p] + gt_area[g] - inter - overlap.get((VOID, p), 0)
        iou = inter / union
        if iou > 0.5:
            category = gt_segments[g]["category_id"]
            tp[category] += 1
            iou_sum[category] += iou
            matched_gt.add(g)
            matched_pred.add(p)

    crowd_of = {info["category_id"]: g for g, info in gt_segments.items() if info["iscrowd"]}
    for g, info in gt_segments.items():
        if g not in matched_gt and not info["iscrowd"] and gt_area.get(g, 0) > 0:
            fn[info["category_id"]] += 1
    for p, info in pred_segments.items():
        if p in matched_pred or pred_area.get(p, 0) == 0:
            continue
        category = info["category_id"]
        ignored = overlap.get((VOID, p), 0)
        if category in crowd_of:
            ignored += overlap.get((crowd_of[category], p), 0)
        if ignored / pred_area[p] > 0.5:
            continue
        fp[category] += 1
    return {"tp": tp, "fp": fp, "fn": fn, "iou": iou_sum}


def pq_from_counts(
    counts: dict[str, np.ndarray],
    thing_class_ids: Iterable[int],
    stuff_class_ids: Iterable[int],
    class_names: Sequence[str],
) -> dict[str, float]:
    """PQ, SQ, RQ (all, things `_th`, stuff `_st`) and `PQ-<class>`, as percentages.

    A group without any counted category gets -1, and so does the PQ of a class
    with TP + FP + FN = 0.
    """
    tp = counts["tp"].astype(np.float64)
    fp = counts["fp"].astype(np.float64)
    fn = counts["fn"].astype(np.float64)
    iou = counts["iou"]
    counted = (tp + fp + fn) > 0
    denom = np.where(counted, tp + 0.5 * fp + 0.5 * fn, 1.0)
    pq = np.where(counted, iou / denom, 0.0)
    sq = np.where(tp > 0, iou / np.maximum(tp, 1.0), 0.0)
    rq = np.where(counted, tp / denom, 0.0)

    things = [int(c) for c in thing_class_ids]
    stuff = [int(c) for c in stuff_class_ids]
    out: dict[str, float] = {}
    for suffix, group in (("", things + stuff), ("_th", things), ("_st", stuff)):
        ids = [c for c in group if counted[c]]
        for name, values in (("PQ", pq), ("SQ", sq), ("RQ", rq)):
            out[name + suffix] = float(100 * values[ids].mean()) if ids else ABSENT
    for c in sorted(things + stuff):
        out[f"PQ-{class_names[c]}"] = float(100 * pq[c]) if counted[c] else ABSENT
    return out


class PanopticEvaluator(DatasetEvaluator):
    """PQ, SQ and RQ of the model's `panoptic_seg` output (results under `panoptic_seg`).

    The ground truth of an image comes from its input dict (the mapper keeps the dataset
    dict's keys): `sem_seg_file_name` and the instance `annotations`. Memory stays constant:
    per image only per-category TP/FP/FN/IoU sums are kept.
    """

    def __init__(self, metadata: Metadata, output_dir: Optional[str] = None, *,
                 labels: Optional[GroundTruthLabels] = None):
        """
        Args:
            metadata: the dataset's classes, thing ids, ignore ids and label format.
            output_dir: unused (PQ writes no file); the evaluators' common second argument.
            labels: the ground-truth reader shared with the other evaluators of the run;
                None = one of its own for the metadata.
        """
        self.metadata = metadata
        self.dataset_name = metadata.name
        self.output_dir = output_dir
        self.ignore_class_ids = list(metadata.ignore_class_ids)
        self.thing_class_ids = list(metadata.thing_class_ids)
        self.stuff_class_ids = list(metadata.stuff_class_ids)
        self.labels = labels or GroundTruthLabels(metadata)
        self.reset()

    def reset(self) -> None:
        n = self.metadata.num_classes
        self._counts = {"tp": np.zeros(n, dtype=np.int64), "fp": np.zeros(n, dtype=np.int64),
                        "fn": np.zeros(n, dtype=np.int64), "iou": np.zeros(n, dtype=np.float64)}

    def _prediction(self, output: dict, where: str) -> tuple[np.ndarray, dict[int, dict]]:
        if "panoptic_seg" not in output:
            raise DataError(f"{where}: the model output has no 'panoptic_seg'")
        seg, infos = output["panoptic_seg"]
        seg = to_numpy(seg)
        segments = {}
        for info in infos:
            category = int(info["category_id"])
            if not 0 <= category < self.metadata.num_classes or category in self.ignore_class_ids:
                raise DataError(f"{where}: predicted segment {info['id']} has category {category}, which is not a "
                                "class that can be predicted")
            segments[int(info["id"])] = {"category_id": category}
        present = set(np.unique(seg).tolist()) - {VOID}
        unknown = sorted(present - set(segments))
        if unknown:
            raise DataError(f"{where}: panoptic_seg holds segment ids {unknown[:10]} that segments_info lacks")
        return seg, segments

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        for inp, out in zip(inputs, outputs):
            where = f"image {inp.get('file_name', inp.get('image_id'))}"
            gt_file = inp.get("sem_seg_file_name")
            if not gt_file:
                raise DataError(f"{where}: the input dict has no 'sem_seg_file_name' for the panoptic ground truth")
            sem = self.labels.read(gt_file)
            gt_seg, gt_segments = panoptic_ground_truth(sem, inp.get("annotations") or [], self.thing_class_ids,
                                                        self.ignore_class_ids, where)
            pred_seg, pred_segments = self._prediction(out, where)
            if pred_seg.shape != gt_seg.shape:
                raise DataError(f"{where}: panoptic_seg has size {pred_seg.shape} but the ground truth "
                                f"{gt_file} has size {gt_seg.shape}")
            counts = pq_image_counts(gt_seg, gt_segments, pred_seg, pred_segments, self.metadata.num_classes)
            for key, value in counts.items():
                self._counts[key] += value

    def evaluate(self) -> dict:
        gathered = comm.all_gather(self._counts)
        if not comm.is_main_process():
            return {}
        counts = {key: np.sum([g[key] for g in gathered], axis=0) for key in self._counts}
        return {"panoptic_seg": pq_from_counts(counts, self.thing_class_ids, self.stuff_class_ids,
                                               self.metadata.class_names)}
