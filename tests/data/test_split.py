"""Dataset splits: split_image_ids, the split file, apply_split, and tools/split_dataset.py."""
import importlib.util
import json
import os

import numpy as np
import pytest
from PIL import Image

from segdet.data import DatasetCatalog, Metadata, MetadataCatalog
from segdet.data.formats.image_folder import register_image_folder
from segdet.utils.cli import run_cli
from segdet.data.split import apply_split, read_split_file, split_image_ids, write_split_file
from segdet.errors import DataError
from tests.logs import captured_warnings

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "split_dataset.py")

IDS = [f"img{i:02d}" for i in range(10)]


def _sizes(splits):
    return {name: len(ids) for name, ids in splits.items()}


def _assert_partition(splits, ids):
    flat = [i for part in splits.values() for i in part]
    assert sorted(flat) == sorted(ids)  # every id once, none added


def test_sizes_by_rounding_remainder_to_first():
    splits = split_image_ids(IDS, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)
    # 0.15 * 10 = 1.5 rounds to 2 for val and test; train takes the remaining 6.
    assert _sizes(splits) == {"train": 6, "val": 2, "test": 2}
    assert list(splits) == ["train", "val", "test"]
    _assert_partition(splits, IDS)
    splits = split_image_ids(IDS[:7], {"train": 0.5, "val": 0.5}, seed=0)
    assert _sizes(splits) == {"train": 3, "val": 4}  # val: round(3.5) = 4


def test_deterministic_and_independent_of_input_order():
    fractions = {"train": 0.6, "val": 0.4}
    a = split_image_ids(IDS, fractions, seed=3)
    assert split_image_ids(list(reversed(IDS)), fractions, seed=3) == a
    assert split_image_ids(IDS, fractions, seed=3) == a
    others = [split_image_ids(IDS, fractions, seed=s) for s in range(4, 9)]
    assert any(o != a for o in others)  # the seed matters
    assert all(ids == sorted(ids) for ids in a.values())


def test_every_non_zero_fraction_gets_an_id():
    splits = split_image_ids(IDS[:3], {"train": 0.9, "val": 0.05, "test": 0.05}, seed=0)
    assert _sizes(splits) == {"train": 1, "val": 1, "test": 1}
    splits = split_image_ids(IDS[:4], {"train": 0.1, "val": 0.45, "test": 0.45}, seed=0)
    # Rounding gave val and test 2 each (1.8), leaving train none: the first of the splits rounded
    # up the most gives one back.
    assert _sizes(splits) == {"train": 1, "val": 1, "test": 2}
    _assert_partition(splits, IDS[:4])
    splits = split_image_ids(IDS, {"train": 0.8, "val": 0.2, "test": 0.0}, seed=0)
    assert _sizes(splits) == {"train": 8, "val": 2, "test": 0}
    # Fewer ids than splits: no minimum, rounding only.
    splits = split_image_ids(IDS[:2], {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    assert _sizes(splits) == {"train": 2, "val": 0, "test": 0}


def test_zero_first_fraction_gets_nothing():
    splits = split_image_ids(IDS[:3], {"unused": 0.0, "val": 0.5, "test": 0.5}, seed=0)
    assert splits["unused"] == []
    _assert_partition(splits, IDS[:3])


@pytest.mark.parametrize("fractions", [{"train": 0.7, "val": 0.2}, {"train": 1.2, "val": -0.2}, {}])
def test_bad_fractions(fractions):
    with pytest.raises(DataError):
        split_image_ids(IDS, fractions, seed=0)


def test_duplicate_ids_are_an_error():
    with pytest.raises(DataError, match="img01"):
        split_image_ids(IDS + ["img01"], {"train": 1.0}, seed=0)


def test_write_read_round_trip(tmp_path):
    path = tmp_path / "sub" / "split.json"
    splits = split_image_ids(IDS, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=5)
    write_split_file(str(path), splits, seed=5)
    raw = json.loads(path.read_text())
    assert raw == {**splits, "seed": 5}
    assert read_split_file(str(path)) == splits
    write_split_file(str(path), {"train": ["a"], "val": ["b"]})  # replaces the old file
    assert read_split_file(str(path)) == {"train": ["a"], "val": ["b"]}
    assert os.listdir(path.parent) == ["split.json"]  # no temp file left behind


def test_write_refuses_overlapping_splits(tmp_path):
    path = tmp_path / "split.json"
    with pytest.raises(DataError, match="'b' is in two splits"):
        write_split_file(str(path), {"train": ["a", "b"], "val": ["b"]})
    assert not path.exists()


def test_read_errors(tmp_path):
    with pytest.raises(DataError, match="split file not found"):
        read_split_file(str(tmp_path / "none.json"))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"train": ["a",')
    with pytest.raises(DataError, match=r"corrupt\.json is not valid JSON"):
        read_split_file(str(corrupt))
    twice = tmp_path / "twice.json"
    twice.write_text(json.dumps({"train": ["a", "b"], "test": ["c", "a"], "seed": 0}))
    with pytest.raises(DataError, match=r"twice\.json: image id 'a' is in two splits, 'train' and 'test'"):
        read_split_file(str(twice))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"train": "a"}))
    with pytest.raises(DataError, match="must be a list"):
        read_split_file(str(wrong))


def test_apply_split(tmp_path):
    path = str(tmp_path / "split.json")
    write_split_file(path, {"train": ["c", "a", "gone1", "gone2"], "val": ["b"]})
    dicts = [{"image_id": i, "file_name": f"{i}.png"} for i in ["a", "b", "c"]]
    with captured_warnings("segdet.data.split") as messages:
        kept = apply_split(dicts, path, "train")
    assert kept == [dicts[0], dicts[2]]  # original order
    assert len(messages) == 1 and "2 image id(s)" in messages[0]
    assert apply_split(dicts, None, None) is dicts
    with pytest.raises(DataError, match=r"no split 'test'; its splits: \['train', 'val'\]"):
        apply_split(dicts, path, "test")
    with pytest.raises(DataError, match="needs both"):
        apply_split(dicts, path, None)


def _tool():
    spec = importlib.util.spec_from_file_location("fmt_split_dataset_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image_folder(tmp_path, n):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for i in range(n):
        Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(images / f"p{i}.png")
        Image.fromarray(np.zeros((4, 5), np.uint8)).save(labels / f"p{i}.png")
    return str(images), str(labels)


def test_tool_image_dir(tmp_path, capsys):
    images, _ = _image_folder(tmp_path, 7)
    out = str(tmp_path / "split.json")
    assert _tool().main(["--image-dir", images, "--fractions", "0.6", "0.2", "0.2", "--seed", "2",
                         "--output", out]) == 0
    printed = capsys.readouterr().out
    # 0.2 * 7 = 1.4 rounds to 1 for val and test; train takes the remaining 5.
    assert "train: 5 images" in printed and "val: 1 images" in printed and "test: 1 images" in printed
    expected = split_image_ids([f"p{i}" for i in range(7)], {"train": 0.6, "val": 0.2, "test": 0.2}, seed=2)
    assert read_split_file(out) == expected
    assert json.loads(open(out).read())["seed"] == 2


def test_tool_registered_dataset(tmp_path, capsys):
    images, labels = _image_folder(tmp_path, 5)
    name = "fmt_split_tool_dataset"
    register_image_folder(name, images, labels, metadata=Metadata(class_names=["bg", "fg"]))
    out = str(tmp_path / "split.json")
    try:
        assert _tool().main(["--dataset", name, "--fractions", "0.6", "0.4", "--names", "fit", "check",
                             "--output", out]) == 0
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    splits = read_split_file(out)
    assert _sizes(splits) == {"fit": 3, "check": 2}
    assert "fit: 3 images" in capsys.readouterr().out


def test_tool_errors(tmp_path, capsys):
    tool = _tool()
    out = str(tmp_path / "split.json")
    # Bad input: exit status 2 and one line, as every tool (through run_cli).
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: tool.main(["--dataset", "fmt_no_such_dataset", "--fractions", "1", "--output", out]))
    assert stop.value.code == 2
    assert "unknown dataset 'fmt_no_such_dataset'" in capsys.readouterr().err
    assert tool.main(["--image-dir", str(tmp_path), "--fractions", "0.5", "0.5", "--names", "a", "--output", out]) == 2
    assert not os.path.exists(out)
