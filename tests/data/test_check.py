"""The pre-flight dataset check: every bad sample found at once, the per-file cache, the
class pixel counts it shares with the class weights, and tools/check_dataset.py."""
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segdet.data.check import InstanceRules, check_dataset
from segdet.data.check_cache import FileFactsCache
from segdet.data.class_weights import median_frequency_weights
from segdet.structures.metadata import Metadata
from segdet.utils.cli import run_cli
from tests.engine.cli import load_tool

H, W = 10, 12


def _metadata():
    return Metadata(["bg", "a", "b"], thing_class_ids=[1, 2])


def _sample(folder, stem, seed, label=None):
    rng = np.random.default_rng(seed)
    image_path, label_path = folder / f"{stem}.png", folder / f"{stem}_label.png"
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(image_path)
    label = rng.integers(0, 3, (H, W)).astype(np.uint8) if label is None else label
    Image.fromarray(label).save(label_path)
    return {"file_name": str(image_path), "sem_seg_file_name": str(label_path), "height": H, "width": W,
            "image_id": stem}


def _cut_in_half(path):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:len(data) // 2])


@pytest.fixture
def bad_dataset(tmp_path):
    """Nine samples: three good ones and one of each kind of bad sample the check finds."""
    dicts = [_sample(tmp_path, f"good{i}", i) for i in range(3)]
    half = _sample(tmp_path, "half", 10)
    _cut_in_half(half["file_name"])
    seven = np.ones((H, W), np.uint8)
    seven[3, 4] = 7
    value7 = _sample(tmp_path, "value7", 11, label=seven)
    big = np.ones((H, W), np.uint16)
    big[0, 0] = 300
    value300 = _sample(tmp_path, "value300", 12, label=big)
    small = _sample(tmp_path, "small", 13, label=np.ones((H - 2, W), np.uint8))
    stale = dict(_sample(tmp_path, "stale", 14), height=H + 1)
    unknown_cat = dict(_sample(tmp_path, "cat", 15), annotations=[
        {"category_id": 0, "segmentation": [[1, 1, 5, 1, 5, 5]], "iscrowd": 0}])
    outside = dict(_sample(tmp_path, "outside", 16), annotations=[
        {"category_id": 1, "segmentation": [[1, 1, 5, 1, 5, 5]], "iscrowd": 0},
        {"category_id": 2, "segmentation": [[2, 2, 40, 2, 9, 8]], "iscrowd": 0}])
    return dicts + [half, value7, value300, small, stale, unknown_cat, outside]


def _expected_problems(dicts):
    by_id = {d["image_id"]: d for d in dicts}
    return [
        f"image {by_id['half']['file_name']} is corrupt (cut short: chunk IDAT at byte 33 needs",
        f"label file {by_id['value7']['sem_seg_file_name']}: value(s) [7] are not declared classes",
        f"label file {by_id['value300']['sem_seg_file_name']}: value(s) [300] are not declared classes",
        f"label file {by_id['small']['sem_seg_file_name']} is 8x12 (HxW) but its image",
        f"image {by_id['stale']['file_name']} is 10x12 (HxW) but the dataset says 11x12",
        f"image {by_id['cat']['file_name']}: annotation 0 has category_id 0, which is not a thing class [1, 2]",
        f"image {by_id['outside']['file_name']}: annotation 1 lies outside the 12x10 (WxH) image: "
        "polygon point (40, 2)",
    ]


@pytest.mark.parametrize("processes", [1, 2])
def test_every_bad_sample_is_reported_at_once(bad_dataset, processes, monkeypatch):
    monkeypatch.setattr("segdet.data.check._PROCESS_MIN_FILES", 1)  # the pool, even for a few files
    check = check_dataset(bad_dataset, _metadata(), "toy", InstanceRules([1, 2]), processes=processes)
    assert check.bad_samples == list(range(3, 10))
    assert [p.image_id for p in check.problems] == ["half", "value7", "value300", "small", "stale", "cat", "outside"]
    for problem, expected in zip(check.problems, _expected_problems(bad_dataset)):
        assert problem.problem.startswith(expected), problem.problem
    assert [d["image_id"] for d in check.good_samples(bad_dataset)] == ["good0", "good1", "good2"]
    assert check.bad_files(bad_dataset) == [d["file_name"] for d in bad_dataset[3:]]
    # The class pixels of each good label file, as counted from the file itself.
    for d, pixels in zip(bad_dataset[:3], check.good_class_pixels()[:3]):
        ids = np.array(Image.open(d["sem_seg_file_name"]))
        assert pixels.tolist() == [int((ids == c).sum()) for c in range(3)]
    assert check.files_read == 2 * len(bad_dataset) and check.files_cached == 0


def test_annotations_are_not_checked_without_instances(bad_dataset):
    ctrl_c = signal.getsignal(signal.SIGINT)
    check = check_dataset(bad_dataset, _metadata(), "toy", instance_rules=None, processes=1)
    assert [p.image_id for p in check.problems] == ["half", "value7", "value300", "small", "stale"]
    assert signal.getsignal(signal.SIGINT) is ctrl_c  # read in this process: Ctrl-C still works


def test_the_cache_reads_only_new_and_changed_files(bad_dataset, tmp_path):
    cache_dir = str(tmp_path / "cache")
    first = check_dataset(bad_dataset, _metadata(), "toy", cache=FileFactsCache.for_dataset("toy", cache_dir))
    again = check_dataset(bad_dataset, _metadata(), "toy", cache=FileFactsCache.for_dataset("toy", cache_dir))
    assert (again.files_read, again.files_cached) == (0, 2 * len(bad_dataset))
    assert again.problems == first.problems
    assert [c.tolist() if c is not None else None for c in again.class_pixels] == \
        [c.tolist() if c is not None else None for c in first.class_pixels]

    # Repair the cut image (new size and time): only it is read again, and it passes.
    half = next(d for d in bad_dataset if d["image_id"] == "half")
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(half["file_name"])
    os.utime(half["file_name"], ns=(1, 1))
    third = check_dataset(bad_dataset, _metadata(), "toy", cache=FileFactsCache.for_dataset("toy", cache_dir))
    assert third.files_read == 1 and "half" not in [p.image_id for p in third.problems]
    # Other classes: the labels are decoded anew (their values mean other things now).
    two = Metadata(["bg", "a"])
    fourth = check_dataset(bad_dataset, two, "toy", cache=FileFactsCache.for_dataset("toy", cache_dir))
    assert fourth.files_read == len(bad_dataset)
    assert "good0" in [p.image_id for p in fourth.problems]  # its labels hold 2


def test_class_weights_from_the_check_equal_those_read_from_the_files(bad_dataset):
    check = check_dataset(bad_dataset, _metadata(), "toy", processes=1)
    good = check.good_samples(bad_dataset)
    from_check = median_frequency_weights(good, _metadata(), [0], merge_into_background=[2],
                                          class_pixels=check.good_class_pixels())
    from_files = median_frequency_weights(good, _metadata(), [0], merge_into_background=[2])
    assert from_check == from_files and from_check[0] == 0.0 and from_check[2] == 0.0


def test_tool_prints_a_table_writes_the_report_and_exits_2(tmp_path, capsys):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # (random pixels: half of the file still holds its header)
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(images / f"im{i}.png")
        Image.fromarray(np.full((H, W), i, np.uint8)).save(labels / f"im{i}.png")
    Image.fromarray(np.full((H, W), 7, np.uint8)).save(labels / "im1.png")
    _cut_in_half(images / "im2.png")
    (tmp_path / "classes.json").write_text(json.dumps({"classes": [{"id": i, "name": n} for i, n in
                                                                   enumerate(["bg", "a", "b"])]}))
    (tmp_path / "cfg.yaml").write_text(
        "MODEL: {META_ARCHITECTURE: SemanticSegmentor, MASK_ON: False, SEM_SEG_HEAD: {NUM_CLASSES: 3}}\n"
        "DATASETS:\n  TRAIN: ('chk_toy',)\n  CUSTOM:\n"
        f"    chk_toy: {{FORMAT: image_folder, IMAGE_DIR: {images}, LABEL_DIR: {labels}, "
        f"CLASSES_FILE: {tmp_path / 'classes.json'}}}\n"
        f"OUTPUT_DIR: {tmp_path / 'out'}\n")
    report = tmp_path / "report.json"
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: load_tool("check_dataset").main(["--config-file", str(tmp_path / "cfg.yaml"), "--report", str(report)]))
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [err.strip()] and err.startswith(
        f"error: dataset check: 2 of 3 samples are bad, the first: label file {labels / 'im1.png'}: value(s) [7]")
    assert str(report) in err
    assert "| chk_toy   | im1     |" in out and "| chk_toy   | im2     |" in out
    saved = json.loads(report.read_text())
    assert saved["samples"] == 3 and saved["bad_samples"] == 2
    assert [p["image_id"] for p in saved["problems"]] == ["im1", "im2"]
    assert "value(s) [7]" in saved["problems"][0]["problem"] and "cut short" in saved["problems"][1]["problem"]

    Image.fromarray(np.full((H, W), 1, np.uint8)).save(labels / "im1.png")
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(images / "im2.png")
    assert run_cli(lambda: load_tool("check_dataset").main(["--config-file", str(tmp_path / "cfg.yaml"), "--report", str(report)])) == 0
    assert json.loads(report.read_text())["bad_samples"] == 0


def test_a_dict_without_its_image_is_a_problem_not_a_crash(tmp_path):
    d = _sample(tmp_path, "gone", 1)
    os.remove(d["file_name"])
    check = check_dataset([d], _metadata(), "toy", processes=1)
    assert check.problems[0].problem == f"image not found: {d['file_name']}"
