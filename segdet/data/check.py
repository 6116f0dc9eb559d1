"""The pre-flight dataset check: every file decoded and validated before training starts, and
every bad sample reported at once.

For each dataset dict: the image decodes to the end (`read_image`, as the mapper reads it)
and has the size the dataset says; the label file decodes to the end, holds only declared
class values (`LabelCodec.read`, the mapper's own decoding, so the messages are the same) and
has the image's size; with instance masks on, each annotation's category id is a thing class
and its polygons or RLE lie inside the image.

The files are read by parallel processes with a progress line, and what was learnt of each
file is cached by path, size and modification time (`check_cache`), so a second check reads
only new and changed files. The class pixel counts of the label files come with the result:
INPUT.CLASS_WEIGHTS "auto" takes them from here instead of reading every label again.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
from tabulate import tabulate

from segdet.config.experiment import instances_enabled
from segdet.data.check_cache import FileFactsCache, file_stamp, label_kind
from segdet.data.label_codec import LabelCodec
from segdet.data.resolve import resolve_metadata
from segdet.errors import DataError, SegdetError
from segdet.structures.masks import valid_polygons
from segdet.structures.metadata import Metadata
from segdet.utils import comm
from segdet.utils.files import write_json
from segdet.utils.image_io import read_image
from segdet.utils.progress import Progress

logger = logging.getLogger(__name__)

REPORT_FILE = "dataset_check.json"

# Starting reading processes costs more than reading a few files: fewer files than this per
# process are read in this one.
_PROCESS_MIN_FILES = 16

# Polygon points may lie this far outside the image (annotation tools round to the pixel grid).
_OUTSIDE_TOLERANCE = 1.0


@dataclass
class Problem:
    """Why one sample of a dataset cannot be used."""

    dataset: str
    image_id: str
    problem: str


@dataclass
class DatasetCheck:
    """The check of one dataset.

    Attributes:
        name: the dataset's name.
        num_samples: dataset dicts checked.
        bad_samples: indices of the bad dicts, in order.
        problems: one per bad sample, in the same order.
        class_pixels: per dict, the pixels of each class in its label file (None for a bad
            sample or one without a label file).
        files_read, files_cached: files decoded now, and files whose facts were cached.
        seconds: how long the check took.
    """

    name: str
    num_samples: int = 0
    bad_samples: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    class_pixels: list[Optional[np.ndarray]] = field(default_factory=list)
    files_read: int = 0
    files_cached: int = 0
    seconds: float = 0.0

    def good_samples(self, dataset_dicts: Sequence[dict]) -> list[dict]:
        """The dicts that passed, in order (`dataset_dicts` are the dicts checked)."""
        bad = set(self.bad_samples)
        return [d for i, d in enumerate(dataset_dicts) if i not in bad]

    def good_class_pixels(self) -> list[Optional[np.ndarray]]:
        """`class_pixels` of the dicts that passed, in order."""
        bad = set(self.bad_samples)
        return [c for i, c in enumerate(self.class_pixels) if i not in bad]

    def bad_files(self, dataset_dicts: Sequence[dict]) -> list[str]:
        """The image files of the bad samples."""
        return [str(dataset_dicts[i].get("file_name", "?")) for i in self.bad_samples]


@dataclass
class CheckReport:
    """The checks of one or more datasets, reported together."""

    checks: list[DatasetCheck] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        return [p for c in self.checks for p in c.problems]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def num_samples(self) -> int:
        return sum(c.num_samples for c in self.checks)

    def by_name(self, name: str) -> DatasetCheck:
        return next(c for c in self.checks if c.name == name)

    def summary(self) -> str:
        names = ", ".join(f"'{c.name}'" for c in self.checks)
        state = "all good" if self.ok else f"{len(self.problems)} bad"
        read, cached = sum(c.files_read for c in self.checks), sum(c.files_cached for c in self.checks)
        seconds = sum(c.seconds for c in self.checks)
        return (f"Dataset check of {names}: {self.num_samples} samples, {state} ({read} files read, "
                f"{cached} cached, {seconds:.1f} s)")

    def table(self) -> str:
        rows = [(p.dataset, p.image_id, p.problem) for p in self.problems]
        return tabulate(rows, headers=["dataset", "image", "problem"], tablefmt="pipe", disable_numparse=True)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "datasets": [{"name": c.name, "samples": c.num_samples, "bad_samples": len(c.problems),
                          "files_read": c.files_read, "files_cached": c.files_cached,
                          "seconds": round(c.seconds, 3)} for c in self.checks],
            "samples": self.num_samples,
            "bad_samples": len(self.problems),
            "problems": [{"dataset": p.dataset, "image_id": p.image_id, "problem": p.problem} for p in self.problems],
        }

    def error_message(self, report_path: Optional[str] = None) -> str:
        """One line for a check that failed: the first problem, how many more, where they are."""
        problems = self.problems
        more = f"{len(problems)} of {self.num_samples} samples are bad, the first: " if len(problems) > 1 else ""
        where = ""
        if report_path:
            where = f"; all of them are in the table above and in {report_path}" if len(problems) > 1 \
                else f" (report: {report_path})"
        return (f"dataset check: {more}{problems[0].problem}{where}. Fix or remove the bad files, or set "
                "DATALOADER.SKIP_BAD_SAMPLES True to leave them out")


@dataclass
class InstanceRules:
    """What the annotations of a dataset must satisfy when instance masks are trained."""

    thing_class_ids: Sequence[int]
    merge_into_background: Sequence[int] = ()


# The label decoder `_read_facts` uses (in the reading processes: set by _init_worker).
_worker_codec: Optional[LabelCodec] = None


def _use_codec(codec: Optional[LabelCodec]) -> None:
    global _worker_codec
    _worker_codec = codec


def _init_worker(codec: Optional[LabelCodec]) -> None:
    _use_codec(codec)
    # Ctrl-C goes to the whole process group: the main process stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _read_facts(task: tuple[str, str]) -> dict[str, Any]:
    """What a file holds: {"shape": [h, w]} (+ "class_pixels" for a label file), or {"problem": ...}."""
    kind, path = task
    try:
        if kind == "image":
            return {"shape": list(read_image(path).shape[:2])}
        ids = _worker_codec.read(path)
        counts = np.bincount(ids.ravel(), minlength=_worker_codec.metadata.num_classes)
        return {"shape": list(ids.shape), "class_pixels": counts.tolist()}
    except DataError as e:
        return {"problem": str(e)}


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read_all(tasks: list[tuple[str, str]], codec: LabelCodec, processes: int, what: str) -> list[dict[str, Any]]:
    """_read_facts of every task, in order, by `processes` processes, with a progress line."""
    progress = Progress(len(tasks), what, unit="files")
    results: list[dict[str, Any]] = []
    if processes <= 1 or len(tasks) < _PROCESS_MIN_FILES * processes:
        _use_codec(codec)
        for task in tasks:
            results.append(_read_facts(task))
            progress.step()
    else:
        # fork: the workers start at once and need not import segdet again; spawn elsewhere.
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_init_worker, initargs=(codec,))
        try:
            chunk = max(1, min(16, len(tasks) // (8 * processes)))
            for facts in pool.map(_read_facts, tasks, chunksize=chunk):
                results.append(facts)
                progress.step()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    progress.done()
    return results


def _annotation_problem(ann: dict, k: int, h: int, w: int, rules: InstanceRules) -> Optional[str]:
    if ann.get("iscrowd", 0) or ann.get("category_id") in rules.merge_into_background:
        return None
    cat = ann.get("category_id")
    if cat not in rules.thing_class_ids:
        return f"annotation {k} has category_id {cat}, which is not a thing class {sorted(rules.thing_class_ids)}"
    segmentation = ann.get("segmentation")
    if segmentation is None:
        return f"annotation {k} has no 'segmentation'; instance masks need polygons or RLE"
    if isinstance(segmentation, dict):
        size = [int(v) for v in segmentation.get("size", [])]
        return None if size == [h, w] else f"annotation {k}: RLE size {size} differs from the image size [{h}, {w}]"
    polygons = valid_polygons(segmentation)
    if not polygons:
        return f"annotation {k}: no polygon with at least 3 points (x, y pairs) in its 'segmentation'"
    points = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons])
    t = _OUTSIDE_TOLERANCE
    outside = (points[:, 0] < -t) | (points[:, 0] > w + t) | (points[:, 1] < -t) | (points[:, 1] > h + t)
    if outside.any():
        x, y = points[np.argmax(outside)]
        return f"annotation {k} lies outside the {w}x{h} (WxH) image: polygon point ({x:g}, {y:g})"
    return None


def _sample_problem(d: dict, image: dict[str, Any], label: Optional[dict[str, Any]],
                    rules: Optional[InstanceRules]) -> Optional[str]:
    file_name = d.get("file_name")
    if "problem" in image:
        return image["problem"]
    h, w = image["shape"]
    expected = (d.get("height", h), d.get("width", w))
    if expected != (h, w):
        return (f"image {file_name} is {h}x{w} (HxW) but the dataset says {expected[0]}x{expected[1]}; "
                "was the file replaced after the dataset was indexed?")
    if label is not None:
        if "problem" in label:
            return label["problem"]
        if tuple(label["shape"]) != (h, w):
            return (f"label file {d['sem_seg_file_name']} is {label['shape'][0]}x{label['shape'][1]} (HxW) "
                    f"but its image {file_name} is {h}x{w}")
    if rules is not None:
        for k, ann in enumerate(d.get("annotations") or []):
            problem = _annotation_problem(ann, k, h, w, rules)
            if problem:
                return f"image {file_name}: {problem}"
    return None


def check_dataset(
    dataset_dicts: Sequence[dict],
    metadata: Metadata,
    name: str = "",
    instance_rules: Optional[InstanceRules] = None,
    cache: Optional[FileFactsCache] = None,
    processes: Optional[int] = None,
) -> DatasetCheck:
    """Check one dataset's samples (see the module docstring).

    Args:
        dataset_dicts: the dataset.
        metadata: its classes and label encoding, with the config's overrides.
        name: the dataset's name, for the report (default metadata.name).
        instance_rules: check the annotations (when the model trains instance masks).
        cache: facts already known per file; updated and saved. None = read every file.
        processes: reading processes (default: the usable cores).
    Returns:
        The check, with one problem per bad sample.
    """
    start = time.perf_counter()
    name = name or metadata.name or "dataset"
    codec = LabelCodec(metadata)
    kinds = {"image": "image", "label": label_kind(metadata)}
    files = []  # (role, path) of each dict's files, in order
    for d in dataset_dicts:
        files.append(("image", str(d.get("file_name") or "")))
        if d.get("sem_seg_file_name"):
            files.append(("label", str(d["sem_seg_file_name"])))
    facts: dict[tuple[str, str], dict[str, Any]] = {}
    stamps: dict[tuple[str, str], tuple[int, int]] = {}
    to_read: list[tuple[str, str]] = []
    for role, path in dict.fromkeys(files):
        stamp = file_stamp(path) if path else None
        known = cache.get(kinds[role], path, stamp) if cache is not None and stamp else None
        if known is not None:
            facts[role, path] = known
        else:
            to_read.append((role, path))
            if stamp:
                stamps[role, path] = stamp
    processes = processes or usable_cores()
    if to_read:
        logger.info("Checking dataset '%s': %d files to read (%d cached), %d processes", name, len(to_read),
                    len(facts), processes)
        for task, result in zip(to_read, _read_all(to_read, codec, processes, f"Checking dataset '{name}'")):
            facts[task] = result
            if cache is not None and task in stamps:
                cache.put(kinds[task[0]], task[1], stamps[task], result)
    if cache is not None:
        cache.save()

    check = DatasetCheck(name, num_samples=len(dataset_dicts), files_read=len(to_read),
                         files_cached=len(set(files)) - len(to_read))
    for i, d in enumerate(dataset_dicts):
        image = facts["image", str(d.get("file_name") or "")]
        label = facts.get(("label", str(d["sem_seg_file_name"]))) if d.get("sem_seg_file_name") else None
        problem = _sample_problem(d, image, label, instance_rules)
        if problem:
            check.bad_samples.append(i)
            check.problems.append(Problem(name, str(d.get("image_id", d.get("file_name", "?"))), problem))
            check.class_pixels.append(None)
        else:
            pixels = label.get("class_pixels") if label else None
            check.class_pixels.append(np.asarray(pixels, dtype=np.int64) if pixels is not None else None)
    check.seconds = time.perf_counter() - start
    return check


def check_datasets(cfg, dicts_by_name: dict[str, list[dict]], processes: Optional[int] = None,
                   use_cache: bool = True) -> CheckReport:
    """Check datasets as a config trains and tests on them: each with its metadata and the
    config's overrides, its annotations when MODEL.MASK_ON, its own cache file.

    Args:
        cfg: the config.
        dicts_by_name: dataset name -> its dicts.
        processes: reading processes (default: the usable cores).
        use_cache: read and update the per-file cache (`check_cache`).
    """
    report = CheckReport()
    for name, dicts in dicts_by_name.items():
        metadata = resolve_metadata(cfg, [name])
        rules = None
        if instances_enabled(cfg) and metadata.thing_class_ids:
            rules = InstanceRules(metadata.thing_class_ids, cfg.INPUT.MERGE_INTO_BACKGROUND)
        cache = FileFactsCache.for_dataset(name) if use_cache else None
        report.checks.append(check_dataset(dicts, metadata, name, rules, cache, processes))
    return report


def preflight_check(cfg, dicts_by_name: dict[str, list[dict]]) -> CheckReport:
    """The check before training or evaluation: run on the main process and shared with the
    others; the result is logged and written to OUTPUT_DIR/dataset_check.json.

    Raises:
        DataError: one line naming the first bad file and its problem, when a sample is bad
            and DATALOADER.SKIP_BAD_SAMPLES is off. With it on, the caller leaves the bad
            samples out (`DatasetCheck.good_samples`).
    """
    outcome: Any = None
    if comm.is_main_process():
        try:
            report = check_datasets(cfg, dicts_by_name)
            path = write_json(report.to_dict(), os.path.join(cfg.OUTPUT_DIR, REPORT_FILE))
            if report.ok:
                logger.info(report.summary())
            elif cfg.DATALOADER.SKIP_BAD_SAMPLES:
                logger.warning("%s; they are left out (DATALOADER.SKIP_BAD_SAMPLES), report: %s\n%s",
                               report.summary(), path, report.table())
            else:
                logger.error("%s; report: %s\n%s", report.summary(), path, report.table())
            outcome = report if report.ok or cfg.DATALOADER.SKIP_BAD_SAMPLES else DataError(report.error_message(path))
        except SegdetError as e:
            outcome = e
    # The other processes wait here for the result, a failure included.
    outcome = comm.broadcast(outcome)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome
