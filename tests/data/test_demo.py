"""The demo dataset: generated files, their consistency, and generation on first use."""
import json
import os

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest

from segdet.data import demo
from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.demo import demo_metadata, ensure_demo_dataset, generate_demo_dataset, register_demo_datasets
from segdet.structures.metadata import load_classes_file
from segdet.errors import DataError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SPLITS = ("train", "val", "test")
NUM_IMAGES = 20


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """20 images of 192x192 (also the speed check: this takes well under a few seconds)."""
    root = str(tmp_path_factory.mktemp("demo"))
    summary = generate_demo_dataset(root, num_images=NUM_IMAGES, seed=0)
    return root, summary


def _cocos(root):
    out = {}
    for split in SPLITS:
        with open(os.path.join(root, "annotations", f"instances_{split}.json")) as f:
            out[split] = json.load(f)
    return out


def _segmentations(root):
    for split in SPLITS:
        folder = os.path.join(root, "segmentation", split)
        for name in sorted(os.listdir(folder)):
            yield split, name, cv2.imread(os.path.join(folder, name), cv2.IMREAD_UNCHANGED)


@pytest.fixture
def clean_catalog():
    """Keep whatever the catalogs held before the test (built-in demo names included)."""
    loaders, metadata = dict(DatasetCatalog._loaders), dict(MetadataCatalog._metadata)
    yield
    DatasetCatalog._loaders.clear()
    DatasetCatalog._loaders.update(loaders)
    MetadataCatalog._metadata.clear()
    MetadataCatalog._metadata.update(metadata)


def test_same_seed_same_bytes_other_seed_different(tmp_path):
    paths = ["images/train/fruit_0000.jpg", "segmentation/train/fruit_0000.png",
             "annotations/instances_train.json", "split.json"]
    contents = {}
    for tag, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate_demo_dataset(str(tmp_path / tag), num_images=4, seed=seed, splits=(1.0, 0.0, 0.0))
        contents[tag] = [(tmp_path / tag / p).read_bytes() for p in paths]
    assert contents["a"] == contents["b"]
    for i in range(3):  # images, labels and annotations all change with the seed
        assert contents["a"][i] != contents["c"][i]


def test_splits_partition_the_images(generated):
    root, summary = generated
    cocos = _cocos(root)
    with open(os.path.join(root, "split.json")) as f:
        split_file = json.load(f)
    ids = {split: [os.path.splitext(im["file_name"])[0] for im in cocos[split]["images"]] for split in SPLITS}
    assert sum(len(v) for v in ids.values()) == NUM_IMAGES
    assert len(set().union(*ids.values())) == NUM_IMAGES  # disjoint
    assert all(ids[s] for s in SPLITS)
    for split in SPLITS:
        assert sorted(split_file[split]) == sorted(ids[split])
        assert summary["images_per_split"][split] == len(ids[split])
        images = sorted(os.path.splitext(n)[0] for n in os.listdir(os.path.join(root, "images", split)))
        assert images == sorted(ids[split])
    coco_ids = [im["id"] for s in SPLITS for im in cocos[s]["images"]]
    assert len(set(coco_ids)) == NUM_IMAGES
    # 14/3/3 from the default fractions 0.7/0.15/0.15
    assert [len(ids[s]) for s in SPLITS] == [14, 3, 3]


def test_marker_classes_file_and_readme(generated):
    root, _ = generated
    with open(os.path.join(root, ".complete")) as f:
        marker = json.load(f)
    assert marker["version"] == demo.DEMO_VERSION
    assert (marker["num_images"], marker["seed"]) == (NUM_IMAGES, 0)
    meta = load_classes_file(os.path.join(root, "classes.json"))
    expected = demo_metadata()
    assert meta.class_names == ["background", "orange", "lemon", "apple", "border"]
    assert meta.class_colors == expected.class_colors
    assert (meta.ignore_class_ids, meta.thing_class_ids) == ([4], [1, 2, 3])
    assert expected.ignore_class_ids == [4] and expected.thing_class_ids == [1, 2, 3]
    assert "fruit" in open(os.path.join(root, "README.txt")).read()


def test_segmentation_values_and_border_band(generated):
    root, _ = generated
    seen = set()
    for _, name, seg in _segmentations(root):
        assert seg.dtype == np.uint8 and seg.shape == (192, 192), name
        values = set(np.unique(seg).tolist())
        assert values <= {0, 1, 2, 3, 4}, name
        seen |= values
        border = seg == 4
        assert border.any(), name
        # every border pixel is within 3 px of a labelled (non-border) pixel
        near_label = cv2.dilate((~border).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        assert near_label[border].all(), name
        # two touching non-border pixels never differ in class: class changes are covered by border
        for a, b in ((seg[:, 1:], seg[:, :-1]), (seg[1:, :], seg[:-1, :])):
            both = (a != 4) & (b != 4)
            assert (a[both] == b[both]).all(), name
        # the band is thin: no border pixel is more than 2 px from the band's edge
        thick = cv2.erode(border.astype(np.uint8), np.ones((5, 5), np.uint8))
        assert not thick.any(), name
    assert seen == {0, 1, 2, 3, 4}


def test_annotations_match_the_segmentation(generated):
    root, summary = generated
    cocos = _cocos(root)
    per_class = {"orange": 0, "lemon": 0, "apple": 0}
    class_of_cat = {}
    for cat in cocos["train"]["categories"]:
        class_of_cat[cat["id"]] = demo.CLASS_NAMES.index(cat["name"])
    assert sorted((c["id"], c["name"]) for c in cocos["train"]["categories"]) == [
        (1, "orange"), (2, "lemon"), (3, "apple")]
    for split in SPLITS:
        coco = cocos[split]
        files = {im["id"]: im["file_name"] for im in coco["images"]}
        for ann in coco["annotations"]:
            stem = os.path.splitext(files[ann["image_id"]])[0]
            seg = cv2.imread(os.path.join(root, "segmentation", split, stem + ".png"), cv2.IMREAD_UNCHANGED)
            assert isinstance(ann["segmentation"]["counts"], str) and ann["iscrowd"] == 0
            mask = mask_util.decode(ann["segmentation"]).astype(bool)
            cls = class_of_cat[ann["category_id"]]
            assert mask.sum() == ann["area"] >= demo.MIN_INSTANCE_AREA
            assert np.isin(seg[mask], [cls, 4]).all()
            assert (seg[mask] == cls).any()
            ys, xs = np.nonzero(mask)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            per_class[demo.CLASS_NAMES[cls]] += 1
    assert per_class == summary["instances_per_class"]
    assert all(n > 0 for n in per_class.values())


def test_fruit_colors_tell_the_classes_apart(generated):
    root, _ = generated
    sums = {c: np.zeros(3) for c in (1, 2)}
    counts = {c: 0 for c in (1, 2)}
    for split, name, seg in _segmentations(root):
        image = cv2.cvtColor(cv2.imread(os.path.join(root, "images", split, name[:-4] + ".jpg")), cv2.COLOR_BGR2RGB)
        assert image.shape == (192, 192, 3)
        for c in (1, 2):
            sums[c] += image[seg == c].astype(np.float64).sum(axis=0)
            counts[c] += int((seg == c).sum())
    orange, lemon = (sums[c] / counts[c] for c in (1, 2))
    assert orange[0] > orange[1] > orange[2] + 40  # red > green >> blue
    assert lemon[1] > lemon[2] + 60  # yellow: much more green than blue
    assert lemon[1] / lemon[0] > orange[1] / orange[0] + 0.2  # lemons are yellower than oranges


def test_registered_names_generate_on_first_use(tmp_path, monkeypatch, clean_catalog):
    monkeypatch.setenv("SEGDET_DATASETS", str(tmp_path))
    names = register_demo_datasets(num_images=12)
    root = os.path.join(str(tmp_path), "demo_fruit")
    assert names == ["demo_fruit_train", "demo_fruit_val", "demo_fruit_test"]
    meta = MetadataCatalog.get("demo_fruit_val")
    assert meta.json_file == os.path.join(root, "annotations", "instances_val.json")
    assert meta.ignore_class_ids == [4] and meta.thing_class_ids == [1, 2, 3]
    assert not os.path.exists(root)  # nothing generated at registration

    train = DatasetCatalog.get("demo_fruit_train")
    assert os.path.isfile(os.path.join(root, ".complete"))
    assert [n for n in os.listdir(tmp_path) if n != "demo_fruit"] == []  # no temp folder left
    with open(os.path.join(root, "split.json")) as f:
        split_file = json.load(f)
    assert sorted(d["image_id"] for d in train) == sorted(split_file["train"])
    assert sum(len(split_file[s]) for s in SPLITS) == 12
    for d in train:
        assert os.path.isfile(d["file_name"]) and os.path.isfile(d["sem_seg_file_name"])
        assert all(a["category_id"] in (1, 2, 3) for a in d["annotations"])

    # a second load uses the files as they are
    def fail(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(demo, "generate_demo_dataset", fail)
    assert len(DatasetCatalog.get("demo_fruit_test")) == len(split_file["test"])


def test_outdated_or_interrupted_copy_is_generated_again(tmp_path):
    root = str(tmp_path / "demo_fruit")
    generate_demo_dataset(root, num_images=3, seed=0)
    with open(os.path.join(root, ".complete"), "w") as f:
        json.dump({"generator": demo.GENERATOR, "version": demo.DEMO_VERSION - 1}, f)
    ensure_demo_dataset(root, num_images=4)
    assert demo.read_complete_marker(root)["num_images"] == 4
    os.remove(os.path.join(root, ".complete"))  # as if interrupted
    ensure_demo_dataset(root, num_images=5)
    assert demo.read_complete_marker(root)["num_images"] == 5
    assert sorted(os.listdir(tmp_path)) == ["demo_fruit"]


def test_other_process_finishing_first_wins(tmp_path, monkeypatch):
    root = str(tmp_path / "demo_fruit")
    real = demo.generate_demo_dataset

    def racing(output_dir, **kwargs):
        real(output_dir, **kwargs)
        real(root, **kwargs)  # the other rank renames its copy (same arguments) into place meanwhile
        with open(os.path.join(root, "theirs.txt"), "w") as f:
            f.write("the other rank's copy")

    monkeypatch.setattr(demo, "generate_demo_dataset", racing)
    assert ensure_demo_dataset(root, num_images=3) == root
    assert os.path.isfile(os.path.join(root, "theirs.txt"))  # theirs was kept, ours discarded
    assert sorted(os.listdir(tmp_path)) == ["demo_fruit"]


def test_copy_of_another_size_or_seed_is_made_again(tmp_path):
    root = str(tmp_path / "demo_fruit")
    ensure_demo_dataset(root, num_images=2, seed=0)
    ensure_demo_dataset(root, num_images=3, seed=0)
    assert demo.read_complete_marker(root)["num_images"] == 3
    ensure_demo_dataset(root, num_images=3, seed=4)
    assert demo.read_complete_marker(root)["seed"] == 4


def test_foreign_folder_is_not_overwritten(tmp_path):
    root = tmp_path / "demo_fruit"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a complete segdet demo dataset"):
        ensure_demo_dataset(str(root), num_images=2)
    assert (root / "notes.txt").read_text() == "mine"
