"""weight_image and median-frequency class weights against hand computations."""

import numpy as np
import pytest
from PIL import Image

from segdet.config import get_cfg
from segdet.data.class_weights import median_frequency_weights, resolve_class_weights, weight_image
from segdet.structures.metadata import Metadata
from segdet.errors import ConfigError, DataError
from tests.logs import captured_warnings


def test_weight_image_as_halcon_figure():
    # HALCON's example: background 1.0, orange 30.0, lemon 75.0; border (ignore) -> 0.
    ignore = 255
    sem_seg = np.array([
        [0, 0, 1, 1],
        [0, 2, 2, ignore],
        [ignore, 2, 1, 0],
    ])
    weights = [1.0, 30.0, 75.0, 0.0]
    expected = np.array([
        [1.0, 1.0, 30.0, 30.0],
        [1.0, 75.0, 75.0, 0.0],
        [0.0, 75.0, 30.0, 1.0],
    ], dtype=np.float32)
    out = weight_image(sem_seg, weights, ignore)
    assert out.dtype == np.float32 and out.shape == sem_seg.shape
    assert np.array_equal(out, expected)


def test_weight_image_rejects_values_that_are_no_class():
    with pytest.raises(DataError, match="7"):
        weight_image(np.array([[0, 7]]), [1.0, 2.0], 255)


def _write_gray(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode="L").save(path)
    return str(path)


@pytest.fixture
def map_two_label_maps(tmp_path):
    # Class 3 is ignore, class 4 never appears.
    a = [[0, 0, 0, 1], [0, 0, 1, 3]]  # non-ignore: 0 x5, 1 x2 (7 pixels)
    b = [[0, 2, 2, 2], [0, 2, 2, 3]]  # non-ignore: 0 x2, 2 x5 (7 pixels)
    dicts = [
        {"file_name": "a.png", "sem_seg_file_name": _write_gray(tmp_path / "a.png", a)},
        {"file_name": "b.png", "sem_seg_file_name": _write_gray(tmp_path / "b.png", b)},
    ]
    metadata = Metadata(["bg", "a", "b", "border", "d"], ignore_class_ids=[3])
    return dicts, metadata


def test_median_frequency_weights_by_hand(map_two_label_maps):
    dicts, metadata = map_two_label_maps
    # freq_bg = 7/14 (present in both images), freq_a = 2/7, freq_b = 5/7; median = 1/2.
    expected = [0.5 / 0.5, 0.5 / (2 / 7), 0.5 / (5 / 7), 0.0, 1.0]
    with captured_warnings("segdet.data.class_weights") as messages:
        weights = median_frequency_weights(dicts, metadata, ignore_class_ids=[3])
    assert np.allclose(weights, expected)
    assert len(messages) == 1 and "class 4 (d)" in messages[0]


def test_median_frequency_weights_with_merged_class(map_two_label_maps):
    dicts, metadata = map_two_label_maps
    # Class 1 merged into background: image a is all bg (7), so freq_bg = 9/14, freq_b = 5/7.
    weights = median_frequency_weights(dicts, metadata, [3], merge_into_background=[1], background_class_id=0)
    median = np.median([9 / 14, 5 / 7])
    assert np.allclose(weights, [median / (9 / 14), 0.0, median / (5 / 7), 0.0, 1.0])


def test_median_frequency_weights_reports_bad_label_files(tmp_path):
    metadata = Metadata(["bg", "a"])
    path = _write_gray(tmp_path / "bad.png", [[0, 9]])
    with pytest.raises(DataError, match="bad.png"):
        median_frequency_weights([{"sem_seg_file_name": path}], metadata, [])


def test_resolve_class_weights(map_two_label_maps):
    dicts, metadata = map_two_label_maps
    cfg = get_cfg()
    assert resolve_class_weights(cfg, dicts, metadata, [3]) is None
    cfg.INPUT.CLASS_WEIGHTS = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert resolve_class_weights(cfg, dicts, metadata, [3]) == [1.0, 2.0, 3.0, 0.0, 5.0]
    cfg.INPUT.CLASS_WEIGHTS = "auto"
    assert np.allclose(resolve_class_weights(cfg, dicts, metadata, [3]),
                       median_frequency_weights(dicts, metadata, [3]))
    cfg.INPUT.CLASS_WEIGHTS = [1.0, 2.0]
    with pytest.raises(ConfigError, match="CLASS_WEIGHTS"):
        resolve_class_weights(cfg, dicts, metadata, [3])
