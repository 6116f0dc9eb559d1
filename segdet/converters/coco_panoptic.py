"""COCO panoptic annotations -> segdet semantic PNGs and a classes file.

COCO panoptic gives, per image, a PNG whose color encodes a segment id
(R + 256 * G + 256**2 * B, 0 = unlabeled) and a json entry listing each segment's
category. segdet's `coco_semantic` format wants one gray PNG per image whose pixel
is the class id, plus a classes file; this module writes both.

Class ids: the panoptic categories in json order become 0..K-1 (COCO: 80 things,
then 53 stuff classes), and one last class `unlabeled` (id K) is an ignore class
for pixels of segment 0 and of segments the json does not list. Crowd segments
keep their category (their pixels are labeled; only the instance branch treats
crowds differently, through the instances json).
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from multiprocessing import Pool
from typing import Any, Iterable, Optional, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from segdet.structures.metadata import MAX_CLASSES
from segdet.errors import DataError
from segdet.utils.progress import Progress
from segdet.utils.files import atomic_write_text, is_temp_file
from segdet.utils.image_io import write_image

logger = logging.getLogger(__name__)

UNLABELED_NAME = "unlabeled"
UNLABELED_COLOR = (0, 0, 0)
# Temp files of an interrupted run start with this, so a later run can remove them.


def rgb_to_segment_ids(rgb: np.ndarray) -> np.ndarray:
    """Segment ids (HxW int64) of a COCO panoptic PNG: R + 256 * G + 256**2 * B."""
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def panoptic_classes(categories: Sequence[dict], json_file: str = "<panoptic json>") -> list[dict]:
    """Classes-file entries for COCO panoptic categories: json order, then `unlabeled`.

    Args:
        categories: the json's `categories`, each `{id, name, isthing, color?}`.
        json_file: named in errors.
    Returns:
        `[{id, name, color, coco_id, thing?}, ..., {id: K, name: "unlabeled", color, ignore: True}]`,
        ready for `{"classes": ...}` in a classes file.
    """
    if not isinstance(categories, (list, tuple)) or not categories:
        raise DataError(f"panoptic json {json_file}: 'categories' is missing or empty")
    if len(categories) + 1 > MAX_CLASSES:
        raise DataError(
            f"panoptic json {json_file}: {len(categories)} categories + 'unlabeled' exceed segdet's "
            f"{MAX_CLASSES} classes"
        )
    classes: list[dict] = []
    seen_ids: set[int] = set()
    seen_names: set[str] = set()
    for i, cat in enumerate(categories):
        try:
            coco_id, name = int(cat["id"]), str(cat["name"])
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"panoptic json {json_file}: category #{i} needs an integer 'id' and a 'name': {cat!r}"
            ) from None
        if coco_id in seen_ids or name in seen_names:
            raise DataError(f"panoptic json {json_file}: category id {coco_id} or name '{name}' appears twice")
        if name == UNLABELED_NAME:
            raise DataError(
                f"panoptic json {json_file}: a category is named '{UNLABELED_NAME}', the name of the ignore "
                "class this conversion adds"
            )
        seen_ids.add(coco_id)
        seen_names.add(name)
        entry: dict[str, Any] = {"id": i, "name": name}
        color = cat.get("color")
        if color is not None:
            if not (isinstance(color, (list, tuple)) and len(color) == 3):
                raise DataError(f"panoptic json {json_file}: category '{name}' has color {color!r}; expected [R, G, B]")
            entry["color"] = [int(c) for c in color]
        entry["coco_id"] = coco_id
        if int(cat.get("isthing", 0)):
            entry["thing"] = True
        classes.append(entry)
    if any("color" not in c for c in classes):
        # Metadata takes colors for all classes or for none; without all, segdet's palette is used.
        for c in classes:
            c.pop("color", None)
        unlabeled: dict[str, Any] = {"id": len(classes), "name": UNLABELED_NAME, "ignore": True}
    else:
        unlabeled = {"id": len(classes), "name": UNLABELED_NAME, "color": list(UNLABELED_COLOR), "ignore": True}
    classes.append(unlabeled)
    return classes


def category_to_class(classes: Sequence[dict]) -> dict[int, int]:
    """COCO category id -> class id, from `panoptic_classes` entries."""
    return {int(c["coco_id"]): int(c["id"]) for c in classes if "coco_id" in c}


def write_classes_file(classes: Sequence[dict], path: str) -> bool:
    """Write `{"classes": classes}` atomically; an existing file must hold the same classes.

    Train and val conversions write the same file: the same classes mean the same
    class ids, so the second run keeps the file, and other classes are an error
    (labels converted with different ids must not share one classes file).

    Returns:
        True if the file was written, False if it already held these classes.
    """
    content = {"classes": list(classes)}
    if os.path.isfile(path):
        try:
            with open(path) as f:
                existing = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
            raise DataError(f"classes file {path} exists but cannot be read ({e}); remove it and run again") from None
        if existing == content:
            return False
        raise DataError(
            f"classes file {path} exists and holds other classes than the panoptic json's categories; "
            "semantic PNGs of one dataset must share one class list. Remove it (and the PNGs converted "
            "with it) or pass another --classes-out"
        )
    atomic_write_text(json.dumps(content, indent=1) + "\n", path)
    return True


def _read_panoptic_png(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise DataError(f"panoptic PNG not found: {path}")
    try:
        with Image.open(path) as im:
            if im.mode not in ("RGB", "RGBA", "P"):
                raise DataError(
                    f"panoptic PNG {path} has pixel mode {im.mode}; expected RGB (segment id = R + 256 G + 256^2 B)"
                )
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        # PIL reports damaged PNGs with all of these, depending on where the damage is.
        raise DataError(f"panoptic PNG is corrupt or not a readable image: {path} ({e})") from None


def convert_panoptic_png(
    png_path: str,
    segments: Sequence[tuple[int, int]],
    out_path: str,
    unlabeled_id: int,
    expected_size: Optional[tuple[int, int]] = None,
) -> int:
    """Convert one panoptic PNG into a gray class-id PNG, written atomically.

    Args:
        png_path: COCO panoptic PNG (segment ids as colors).
        segments: (segment id, class id) of each listed segment.
        out_path: the gray PNG to write (pixel = class id).
        unlabeled_id: class id of segment 0 and of segments not in `segments`.
        expected_size: (height, width) from the json, checked when given.
    Returns:
        The number of pixels of segments the json does not list (set to `unlabeled_id`).
    """
    seg_ids = rgb_to_segment_ids(_read_panoptic_png(png_path))
    if expected_size is not None and tuple(seg_ids.shape) != tuple(expected_size):
        raise DataError(
            f"panoptic PNG {png_path} is {seg_ids.shape[0]}x{seg_ids.shape[1]} (HxW) but its image is "
            f"{expected_size[0]}x{expected_size[1]} in the json"
        )
    # Look up each distinct segment id once, then paint the map through the inverse index.
    unique, inverse = np.unique(seg_ids, return_inverse=True)
    table = dict(segments)
    values = np.array([table.get(int(s), unlabeled_id) for s in unique], dtype=np.uint8)
    unknown = [i for i, s in enumerate(unique) if s != 0 and int(s) not in table]
    classes = values[inverse.reshape(seg_ids.shape)]
    unknown_pixels = int(np.isin(inverse, unknown).sum()) if unknown else 0
    write_image(out_path, classes)
    return unknown_pixels


@dataclass
class _Task:
    png_path: str
    out_path: str
    segments: list[tuple[int, int]]
    unlabeled_id: int
    expected_size: Optional[tuple[int, int]]


def _run_task(task: _Task) -> tuple[str, Optional[str], int]:
    """(png path, error message or None, unknown-segment pixels); a pool worker's job."""
    try:
        unknown = convert_panoptic_png(task.png_path, task.segments, task.out_path, task.unlabeled_id,
                                       task.expected_size)
        return task.png_path, None, unknown
    except DataError as e:
        return task.png_path, str(e), 0


@dataclass
class ConversionSummary:
    """What `convert_coco_panoptic` did."""

    total: int = 0
    converted: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, problem)
    images_with_unknown_segments: int = 0
    classes_file: str = ""
    num_classes: int = 0
    num_thing_classes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total, "converted": self.converted, "skipped": self.skipped,
            "failed": len(self.failed), "images_with_unknown_segments": self.images_with_unknown_segments,
            "classes_file": self.classes_file, "num_classes": self.num_classes,
            "num_thing_classes": self.num_thing_classes,
        }


def load_panoptic_json(path: str) -> dict:
    """The panoptic json, checked for `categories` and `annotations`."""
    if not os.path.isfile(path):
        raise DataError(f"panoptic json not found: {path}")
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"panoptic json {path} cannot be parsed: {e}") from None
    except UnicodeDecodeError:
        raise DataError(f"panoptic json {path} is not a text (UTF-8) file") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list) or "categories" not in data:
        raise DataError(f"panoptic json {path}: expected a COCO panoptic file with 'categories' and 'annotations'")
    return data


def _tasks(data: dict, json_file: str, panoptic_root: str, output_root: str, classes: list[dict],
           failed: list[tuple[str, str]]) -> list[_Task]:
    cat_map = category_to_class(classes)
    unlabeled_id = len(classes) - 1
    sizes = {}
    for img in data.get("images") or []:
        if isinstance(img, dict) and "id" in img and "height" in img and "width" in img:
            sizes[img["id"]] = (int(img["height"]), int(img["width"]))
    tasks = []
    seen: dict[str, Any] = {}
    for i, ann in enumerate(data["annotations"]):
        name = ann.get("file_name") if isinstance(ann, dict) else None
        where = f"panoptic json {json_file}, annotation #{i}"
        if not isinstance(name, str) or not isinstance(ann.get("segments_info"), list):
            failed.append((f"{where} (image_id {ann.get('image_id') if isinstance(ann, dict) else '?'})",
                           "no 'file_name' or 'segments_info'"))
            continue
        png_path = os.path.join(panoptic_root, name)
        out_name = os.path.splitext(os.path.basename(name))[0] + ".png"
        if out_name in seen:
            failed.append((png_path, f"{where}: output {out_name} also comes from annotation #{seen[out_name]}"))
            continue
        seen[out_name] = i
        segments = []
        problem = None
        for seg in ann["segments_info"]:
            try:
                seg_id, cat_id = int(seg["id"]), int(seg["category_id"])
            except (KeyError, TypeError, ValueError):
                problem = f"{where}: a segment lacks an integer 'id' or 'category_id': {seg!r}"
                break
            if cat_id not in cat_map:
                problem = f"{where}: segment {seg_id} has category_id {cat_id}, which is not in 'categories'"
                break
            segments.append((seg_id, cat_map[cat_id]))
        if problem:
            failed.append((png_path, problem))
            continue
        tasks.append(_Task(png_path, os.path.join(output_root, out_name), segments, unlabeled_id,
                           sizes.get(ann.get("image_id"))))
    return tasks


def _remove_stale_temp_files(folder: str) -> None:
    # Left by a killed run; they are hidden and never read, but they take space.
    for name in os.listdir(folder):
        if is_temp_file(name):
            os.remove(os.path.join(folder, name))


def convert_coco_panoptic(
    panoptic_json: str,
    panoptic_root: str,
    output_root: str,
    classes_out: str,
    workers: int = 1,
    progress_period: float = 10.0,
) -> ConversionSummary:
    """Convert a COCO panoptic json + PNG folder into segdet semantic PNGs and a classes file.

    Resumable: images whose output PNG exists are skipped (outputs are written
    atomically, so an existing one is complete). A missing or bad PNG is logged by
    name and counted in `failed`; the other images are still converted.

    Args:
        panoptic_json: e.g. annotations/panoptic_train2017.json.
        panoptic_root: folder of its PNGs, e.g. annotations/panoptic_train2017.
        output_root: folder for the gray PNGs (`<stem>.png`, pixel = class id).
        classes_out: classes file to write (or to check, if it exists).
        workers: processes converting images; 1 = in this process.
        progress_period: seconds between progress lines.
    Returns:
        A ConversionSummary.
    """
    data = load_panoptic_json(panoptic_json)
    classes = panoptic_classes(data["categories"], panoptic_json)
    write_classes_file(classes, classes_out)
    os.makedirs(output_root, exist_ok=True)
    _remove_stale_temp_files(output_root)
    summary = ConversionSummary(
        classes_file=classes_out, num_classes=len(classes),
        num_thing_classes=sum(1 for c in classes if c.get("thing")),
    )
    tasks = _tasks(data, panoptic_json, panoptic_root, output_root, classes, summary.failed)
    del data  # the train json is large; the tasks hold what is needed
    summary.total = len(tasks) + len(summary.failed)
    todo = [t for t in tasks if not os.path.exists(t.out_path)]
    summary.skipped = len(tasks) - len(todo)
    for path, problem in summary.failed:
        logger.error("%s", describe_failure(path, problem))
    if summary.skipped:
        logger.info("%d of %d images already converted in %s; skipped", summary.skipped, len(tasks), output_root)
    progress = Progress(len(todo), "Converting panoptic PNGs", logger=logger, period=progress_period)
    for png_path, error, unknown in _map(todo, workers):
        progress.step()
        if error is not None:
            logger.error("%s", describe_failure(png_path, error))
            summary.failed.append((png_path, error))
            continue
        summary.converted += 1
        if unknown:
            summary.images_with_unknown_segments += 1
            logger.debug("%s: %d pixels of segments not in the json, set to '%s'", png_path, unknown, UNLABELED_NAME)
    progress.done()
    if summary.images_with_unknown_segments:
        logger.warning("%d images have segments the json does not list; their pixels are '%s' (ignored)",
                       summary.images_with_unknown_segments, UNLABELED_NAME)
    return summary


def describe_failure(path: str, problem: str) -> str:
    """One line naming the file and its problem (messages that name the file are kept as they are)."""
    return problem if path in problem else f"{path}: {problem}"


def _map(tasks: list[_Task], workers: int) -> Iterable[tuple[str, Optional[str], int]]:
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_run_task, tasks)
        return
    # Small chunks keep the progress line moving; PNG decoding dominates the cost, not the IPC.
    with Pool(processes=workers) as pool:
        yield from pool.imap_unordered(_run_task, tasks, chunksize=16)


def check_instances_categories(instances_json: str, classes: Sequence[dict]) -> list[str]:
    """Mismatches between an instances json's categories and the panoptic classes.

    `coco_semantic` matches the instances json's categories to classes by name, and
    each must be a thing class (else loading fails); a thing class without an
    instances category would get no instance annotations.

    Returns:
        One message per mismatch; empty when the names agree.
    """
    if not os.path.isfile(instances_json):
        raise DataError(f"COCO instances json not found: {instances_json}")
    try:
        with open(instances_json) as f:
            categories = json.load(f).get("categories")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise DataError(f"COCO instances json {instances_json} cannot be parsed: {e}") from None
    if not isinstance(categories, list):
        raise DataError(f"COCO instances json {instances_json}: no 'categories' list")
    things = {c["name"] for c in classes if c.get("thing")}
    names = {c["name"] for c in classes}
    problems = []
    for cat in categories:
        name = str(cat.get("name"))
        if name not in names:
            problems.append(f"instances category '{name}' (id {cat.get('id')}) is not a panoptic category")
        elif name not in things:
            problems.append(f"instances category '{name}' (id {cat.get('id')}) is a stuff class in the panoptic json")
    instance_names = {str(c.get("name")) for c in categories}
    for name in sorted(things - instance_names):
        problems.append(f"panoptic thing class '{name}' has no category in the instances json (no instances)")
    return problems
