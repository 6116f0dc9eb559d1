"""The twelve kinds of bad input of issue 12, through the tools they apply to: each ends in one
line naming the file and the problem, exit status 2, no traceback (a gray image is converted
and used). The tools' code runs in this process as `python tools/X.py` runs it (`run_cli`);
tests/engine/test_loader_failures_cli.py runs train_net.py in a subprocess where a loader
worker finds the bad file."""
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.utils.cli import run_cli
from tests.engine.cli import load_tool, write_bad_input
from tests.inference.common import random_image, save_tiny_checkpoint

BAD = 2  # the bad image of write_bad_input's datasets


train_net, predict, eval_predictions = (load_tool(n) for n in ("train_net", "predict", "eval_predictions"))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this pickle runs code",))


def _model_file(tmp_path, kind):
    path = tmp_path / f"{kind}.pth"
    if kind == "corrupt_model_file":
        path.write_bytes(b"PK\x03\x04 half of a zip archive")
    else:
        with open(path, "wb") as f:
            pickle.dump({"model": Evil()}, f)
    return path


def _outcome(call, capfd):
    """(exit status, stdout, stderr) of `run_cli(call)`, as the tool's __main__ ends; captured at
    the file descriptors, so that what OpenCV or libpng print themselves counts too."""
    try:
        code = run_cli(call)
    except SystemExit as e:
        code = e.code
    out, err = capfd.readouterr()
    return code, out, err


def _assert_one_line(code, err, *fragments, warnings=(), status=2):
    assert code == status, err
    # (A warning would print around the line: torch's about the pickle protocol, for one.)
    assert not [str(w.message) for w in warnings if "pickle" in str(w.message)]
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert str(fragment) in lines[0]


TRAIN_NET_KINDS = ["corrupt_header", "cut_in_half", "missing_label", "size_mismatch", "empty_dataset",
                   "unknown_dataset", "misspelled_key", "corrupt_model_file", "pickle_model_file", "gray_image",
                   "label_value_7", "label_16bit_300"]


@pytest.mark.parametrize("kind", TRAIN_NET_KINDS)
def test_train_net(kind, tmp_path, capfd, recwarn):
    config = write_bad_input(tmp_path, kind if kind in _DATA_KINDS else "none", bad=BAD)
    images, labels = tmp_path / "images", tmp_path / "labels"
    opts = {"unknown_dataset": ["DATASETS.TRAIN", "('no_such_dataset',)"],
            "misspelled_key": ["SOLVER.BASE_RL", "0.1"]}.get(kind, [])
    if kind.endswith("model_file"):
        opts = ["MODEL.WEIGHTS", str(_model_file(tmp_path, kind))]
    args = train_net.default_argument_parser().parse_args(["--config-file", config] + opts)
    try:
        code, out, err = _outcome(lambda: train_net.run(args), capfd)
    finally:
        for name in DatasetCatalog.list():
            if name.startswith("bad_"):
                DatasetCatalog.remove(name)
                MetadataCatalog.remove(name)
    if kind == "gray_image":  # converted to RGB and trained on
        assert code is None, err
        assert (tmp_path / "out" / "model_final.pth").is_file()
        return
    image, label = images / f"im{BAD}.png", labels / f"im{BAD}.png"
    expected = {
        "corrupt_header": [f"image is corrupt or not a readable image: {image}"],
        "cut_in_half": [f"image {image} is corrupt (cut short: chunk IDAT"],
        "missing_label": [f"image {image} has no label file: nothing named 'im{BAD}.*' in {labels}"],
        "size_mismatch": [f"label file {label} is 56x64 (WxH) but its image {image} is 64x64"],
        "empty_dataset": ["no images (", f") in {images}"],
        "unknown_dataset": ["unknown dataset 'no_such_dataset'"],
        "misspelled_key": ["unknown config key 'SOLVER.BASE_RL' (did you mean 'SOLVER.BASE_LR'?)"],
        "corrupt_model_file": [f"model file {tmp_path / (kind + '.pth')} is corrupt or not a PyTorch file"],
        "pickle_model_file": [f"model file {tmp_path / (kind + '.pth')} holds more than weights"],
        "label_value_7": [f"label file {label}: value(s) [7] are not declared classes"],
        "label_16bit_300": [f"label file {label}: value(s) [300] are not declared classes"],
    }[kind]
    _assert_one_line(code, err, *expected, warnings=recwarn.list)


_DATA_KINDS = {"corrupt_header", "cut_in_half", "missing_label", "size_mismatch", "empty_dataset", "gray_image",
               "label_value_7", "label_16bit_300"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("kinds_model"))[0]


@pytest.mark.parametrize("kind", ["corrupt_header", "cut_in_half", "empty_dataset", "misspelled_key",
                                  "corrupt_model_file", "pickle_model_file", "gray_image"])
def test_predict(kind, tmp_path, model, capfd, recwarn):
    inputs = tmp_path / "in"
    inputs.mkdir()
    if kind != "empty_dataset":
        Image.fromarray(random_image(40, 48, seed=1)).save(inputs / "a.png")
        Image.fromarray(random_image(40, 48, seed=2)).save(inputs / "b.png")
    bad = inputs / "b.png"
    if kind == "corrupt_header":
        bad.write_bytes(b"\x00\x01 not an image at all \xff" * 8)
    elif kind == "cut_in_half":
        bad.write_bytes(bad.read_bytes()[:bad.stat().st_size // 2])
    elif kind == "gray_image":
        Image.fromarray(random_image(40, 48, seed=3)[:, :, 0], mode="L").save(bad)
    weights = _model_file(tmp_path, kind) if kind.endswith("model_file") else model
    args = ["--weights", weights, "--input", inputs, "--output", tmp_path / "out", "--no-overlay"]
    args += ["MODEL.DEVICEE", "cpu"] if kind == "misspelled_key" else []
    code, out, err = _outcome(lambda: predict.main([str(a) for a in args]), capfd)
    if kind == "gray_image":
        assert code == 0, err
        assert (tmp_path / "out" / "b.png").is_file()
        return
    expected = {
        "corrupt_header": [f"image is corrupt or not an image format OpenCV can read: {bad}"],
        "cut_in_half": [f"image {bad} is corrupt (cut short: chunk IDAT"],
        "empty_dataset": [f"no images found in --input {inputs}"],
        "misspelled_key": ["unknown config key 'MODEL.DEVICEE'"],
        "corrupt_model_file": [f"model file {weights} is corrupt or not a PyTorch file"],
        "pickle_model_file": [f"model file {weights} holds more than weights"],
    }[kind]
    # A bad image among good ones: done with a skipped input (status 1); otherwise bad input (2).
    skipped = kind in ("corrupt_header", "cut_in_half")
    _assert_one_line(code, err, *expected, warnings=recwarn.list, status=1 if skipped else 2)
    if skipped:  # the other image is predicted all the same
        assert (tmp_path / "out" / "a.png").is_file()


@pytest.mark.parametrize("kind", ["corrupt_header", "cut_in_half", "missing_label", "size_mismatch",
                                  "empty_dataset", "label_value_7", "label_16bit_300"])
def test_eval_predictions(kind, tmp_path, capfd):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    rng = np.random.default_rng(0)
    for stem in ([] if kind == "empty_dataset" else ["a", "b"]):
        Image.fromarray(rng.integers(0, 3, (32, 40)).astype(np.uint8)).save(gt / f"{stem}.png")
        Image.fromarray(rng.integers(0, 3, (32, 40)).astype(np.uint8)).save(pred / f"{stem}.png")
    if kind == "corrupt_header":
        (pred / "b.png").write_bytes(b"\x00\x01 not an image at all \xff" * 8)
    elif kind == "cut_in_half":
        (gt / "b.png").write_bytes((gt / "b.png").read_bytes()[:(gt / "b.png").stat().st_size // 2])
    elif kind == "missing_label":
        os.remove(pred / "b.png")
    elif kind == "size_mismatch":
        Image.fromarray(np.zeros((32, 36), np.uint8)).save(pred / "b.png")
    elif kind in ("label_value_7", "label_16bit_300"):
        values = np.ones((32, 40), np.uint8 if kind == "label_value_7" else np.uint16)
        values[1, 2] = 7 if kind == "label_value_7" else 300
        Image.fromarray(values).save(gt / "b.png")
    args = ["--gt", gt, "--pred", pred, "--num-classes", 3, "--output", tmp_path / "eval.json"]
    code, out, err = _outcome(lambda: eval_predictions.main([str(a) for a in args]), capfd)
    expected = {
        "corrupt_header": [f"label file is corrupt or not an image format OpenCV can read: {pred / 'b.png'}"],
        "cut_in_half": [f"label file {gt / 'b.png'} is corrupt (cut short: chunk IDAT"],
        "missing_label": [f"no prediction in {pred} for ground-truth file(s): b.png"],
        "size_mismatch": [f"prediction {pred / 'b.png'} has size 36x32 (WxH) but ground truth {gt / 'b.png'} "
                          "has size 40x32"],
        "empty_dataset": [f"ground-truth folder {gt} holds no image files"],
        "label_value_7": [f"label file {gt / 'b.png'}: value(s) [7] are not declared classes"],
        "label_16bit_300": [f"label file {gt / 'b.png'}: value(s) [300] are not declared classes"],
    }[kind]
    _assert_one_line(code, err, *expected)
    assert not (tmp_path / "eval.json").exists()

