"""Class weights and the weight_image (HALCON's names).

The weight_image gives every pixel the weight of its class in the loss; ignore
pixels (and padding) get 0, so they take no part in training.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np
from tabulate import tabulate

from segdet.data.label_codec import LabelCodec
from segdet.structures.metadata import Metadata
from segdet.errors import ConfigError, DataError
from segdet.utils import comm
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)


def weight_image(sem_seg: np.ndarray, class_weights: Sequence[float], ignore_value: int) -> np.ndarray:
    """The weight of each pixel's class; 0 where the pixel is `ignore_value`.

    Args:
        sem_seg: HxW class ids, ignore pixels set to `ignore_value`.
        class_weights: one weight per class id.
        ignore_value: the value of ignore pixels.
    Returns:
        HxW float32.
    """
    sem_seg = np.asarray(sem_seg)
    weights = np.asarray(class_weights, dtype=np.float32)
    out = np.zeros(sem_seg.shape, dtype=np.float32)
    valid = sem_seg != ignore_value
    ids = sem_seg[valid]
    if ids.size and (ids.min() < 0 or ids.max() >= len(weights)):
        bad = sorted({int(v) for v in np.unique(ids) if not 0 <= v < len(weights)})
        raise DataError(
            f"weight_image: segmentation values {bad[:10]} are neither class ids 0..{len(weights) - 1} "
            f"nor the ignore value {ignore_value}"
        )
    out[valid] = weights[ids]
    return out


def count_class_pixels(dataset_dicts: Sequence[dict], metadata: Metadata) -> list[np.ndarray]:
    """The pixels of each class in each label file (one int64 array of num_classes per dict).

    Reads every label file; the pre-flight dataset check (`segdet.data.check`) returns the
    same counts from its own pass over the files, so training reads them once.
    """
    codec = LabelCodec(metadata)
    counts = []
    progress = Progress(len(dataset_dicts), "Counting class pixels for class weights")
    for d in dataset_dicts:
        path = d.get("sem_seg_file_name")
        if not path:
            raise DataError(f"image {d.get('file_name', '?')} has no label file (sem_seg_file_name)")
        counts.append(np.bincount(codec.read(path).ravel(), minlength=metadata.num_classes).astype(np.int64))
        progress.step()
    progress.done()
    return counts


def median_frequency_weights(
    dataset_dicts: Sequence[dict],
    metadata: Metadata,
    ignore_class_ids: Sequence[int],
    merge_into_background: Sequence[int] = (),
    background_class_id: int = 0,
    class_pixels: Optional[Sequence[np.ndarray]] = None,
) -> list[float]:
    """Median-frequency balancing (Eigen & Fergus, 2015) over the label files of a dataset.

    freq_c = pixels of class c / pixels of the images where c is present, and
    weight_c = median(freq over the present, non-ignore classes) / freq_c.
    Ignore pixels are left out of every count, as they take no part in training.

    Args:
        dataset_dicts: dicts with `sem_seg_file_name`.
        metadata: decodes the label files.
        ignore_class_ids: classes that get weight 0.
        merge_into_background, background_class_id: classes relabeled as background
            before counting (as the mapper does); they get weight 0.
        class_pixels: the pixels of each class per dict, when already counted
            (`count_class_pixels`, or the dataset check); None = read the label files.
    Returns:
        One weight per class: 0 for ignore and merged classes, 1.0 (with a warning)
        for a class absent from every image.
    """
    n = metadata.num_classes
    if class_pixels is None:
        class_pixels = count_class_pixels(dataset_dicts, metadata)
    ignore = np.zeros(n, dtype=bool)
    ignore[list(ignore_class_ids)] = True
    merged = [c for c in merge_into_background if c != background_class_id]
    total_pixels = np.zeros(n, dtype=np.int64)
    present_total = np.zeros(n, dtype=np.int64)  # pixels of the images where the class is present
    for image_pixels in class_pixels:
        counts = np.asarray(image_pixels, dtype=np.int64)[:n].copy()
        if merged:
            counts[background_class_id] += counts[merged].sum()
            counts[merged] = 0
        counts[ignore] = 0
        present = counts > 0
        total_pixels += counts
        present_total[present] += counts.sum()

    weights = np.ones(n, dtype=np.float64)
    counted = ~ignore
    counted[merged] = False
    present = counted & (total_pixels > 0)
    if present.any():
        freq = total_pixels[present] / present_total[present]
        weights[present] = np.median(freq) / freq
    for c in np.flatnonzero(counted & ~present):
        logger.warning("class %d (%s) has no pixels in the training set; its weight is 1.0",
                       c, metadata.class_names[c])
    weights[ignore] = 0.0
    weights[merged] = 0.0
    return [float(w) for w in weights]


def resolve_class_weights(
    cfg, dataset_dicts: Sequence[dict], metadata: Metadata, ignore_class_ids: Sequence[int],
    class_pixels: Optional[Sequence[np.ndarray]] = None,
) -> Optional[list[float]]:
    """The class weights INPUT.CLASS_WEIGHTS asks for.

    Args:
        class_pixels: for "auto", the pixels of each class per dict if already counted
            (on the main process); None = read the label files.
    Returns:
        None when the key is null (all classes weigh 1); the configured list with 0
        for ignore classes; or median-frequency weights for "auto" (computed on
        the main process, shared with the others, and logged as a table).
    """
    spec = cfg.INPUT.CLASS_WEIGHTS
    n = metadata.num_classes
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec != "auto":
            raise ConfigError(f"config key INPUT.CLASS_WEIGHTS = {spec!r}; expected null, 'auto' or a list")
        weights = None
        if comm.is_main_process():
            weights = median_frequency_weights(
                dataset_dicts, metadata, ignore_class_ids,
                merge_into_background=cfg.INPUT.MERGE_INTO_BACKGROUND,
                background_class_id=cfg.INPUT.BACKGROUND_CLASS_ID,
                class_pixels=class_pixels,
            )
        weights = comm.broadcast(weights)
        rows = [(c, metadata.class_names[c], f"{w:.4f}") for c, w in enumerate(weights)]
        logger.info("Class weights (median-frequency balancing):\n%s",
                    tabulate(rows, headers=["id", "class", "weight"], tablefmt="pipe"))
        return weights
    weights = [float(w) for w in spec]
    if len(weights) != n:
        raise ConfigError(
            f"config key INPUT.CLASS_WEIGHTS has {len(weights)} weights but dataset "
            f"'{metadata.name}' has {n} classes ({metadata.class_names})"
        )
    if any(w < 0 for w in weights):
        raise ConfigError(f"config key INPUT.CLASS_WEIGHTS = {weights}; weights must be >= 0")
    for c in ignore_class_ids:
        weights[c] = 0.0
    return weights
