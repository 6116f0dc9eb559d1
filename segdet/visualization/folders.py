"""Pictures of whole datasets and prediction folders, one PNG per image (tools/visualize.py)."""
from __future__ import annotations

import logging
import os
from typing import Optional, Sequence

from segdet.data.label_codec import LabelCodec
from segdet.errors import DataError
from segdet.structures.metadata import Metadata
from segdet.utils.image_io import read_image, write_image
from segdet.utils.progress import Progress
from segdet.visualization.panels import ground_truth_panel, prediction_panel

logger = logging.getLogger(__name__)


def picture_path(output_dir: str, image_id: object) -> str:
    """`<output_dir>/<image id>.png`, path separators in the id replaced."""
    name = str(image_id).replace(os.sep, "_").replace("/", "_")
    return os.path.join(output_dir, f"{name}.png")


def draw_dataset(dataset_dicts: Sequence[dict], metadata: Metadata, output_dir: str,
                 max_images: Optional[int] = None) -> int:
    """image | ground truth (classes, ignore classes hatched, instances outlined) | legend, for
    each dataset dict. Returns the number of pictures written."""
    dicts = list(dataset_dicts)[: max(0, max_images)] if max_images is not None else list(dataset_dicts)
    codec = LabelCodec(metadata)
    progress = Progress(len(dicts), f"Drawing the ground truth of {metadata.name or 'the dataset'}", logger=logger)
    for d in dicts:
        image = read_image(d["file_name"])
        seg = codec.read(d["sem_seg_file_name"]) if d.get("sem_seg_file_name") else None
        image_id = d.get("image_id", os.path.splitext(os.path.basename(d["file_name"]))[0])
        picture = ground_truth_panel(image, seg, metadata, d.get("annotations"), title=str(image_id))
        write_image(picture_path(output_dir, image_id), picture)
        progress.step()
    progress.done()
    return len(dicts)


def draw_predictions(predictions: dict[str, str], pairs: dict[str, tuple[str, str]], metadata: Metadata,
                     prediction_codec: LabelCodec, output_dir: str, max_images: Optional[int] = None) -> int:
    """image | ground truth | prediction | error map | legend, for each prediction file whose stem
    names an (image, ground truth) pair. Predictions without ground truth are skipped with a
    warning. Returns the number of pictures written.

    Args:
        predictions: stem -> segmentation_image file (`segdet.inference.predict_files.prediction_files`).
        pairs: stem -> (image file, ground-truth file) (`segdet.data.ground_truth`).
        metadata: the classes; its label format decodes the ground truth.
        prediction_codec: decodes the prediction files.
    """
    matched = [stem for stem in predictions if stem in pairs]
    unmatched = [stem for stem in predictions if stem not in pairs]
    if not matched:
        raise DataError(f"no prediction matches an image with ground truth by file name "
                        f"(predictions: {', '.join(sorted(predictions)[:5])}...)")
    if unmatched:
        logger.warning("%d prediction(s) without ground truth skipped: %s", len(unmatched), ", ".join(unmatched[:10]))
    if max_images is not None:
        matched = matched[: max(0, max_images)]
    gt_codec = LabelCodec(metadata)
    progress = Progress(len(matched), "Drawing predictions", logger=logger)
    for stem in matched:
        image_file, gt_file = pairs[stem]
        image, gt, pred = read_image(image_file), gt_codec.read(gt_file), prediction_codec.read(predictions[stem])
        for what, path, array in (("ground truth", gt_file, gt), ("prediction", predictions[stem], pred)):
            if array.shape != image.shape[:2]:
                raise DataError(f"{what} {path} has size {array.shape[1]}x{array.shape[0]} (WxH) but the image "
                                f"{image_file} has size {image.shape[1]}x{image.shape[0]}")
        write_image(picture_path(output_dir, stem), prediction_panel(image, gt, pred, metadata, title=stem))
        progress.step()
    progress.done()
    return len(matched)
