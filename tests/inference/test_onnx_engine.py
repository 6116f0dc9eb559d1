"""TEST.ENGINE onnxruntime: the semantic logits step run by ONNX Runtime gives the torch engine's
segmentation (0 pixels differ) and scores (within 1e-4), whole images, batches and tiles, with
the model's own class weight correction; a model with instances is a ConfigError."""
import sys

import pytest
import torch

from segdet.config import load_config
from segdet.errors import ConfigError
from segdet.inference.onnx_engine import OnnxRuntimeLogits, use_engine
from segdet.inference.predictor import Predictor
from tests.inference.common import random_image, save_tiny_checkpoint


@pytest.fixture(scope="module")
def semantic(tmp_path_factory):
    # With the class weight correction on: the engine must leave the model's own scores step in place.
    path, _, _ = save_tiny_checkpoint(tmp_path_factory.mktemp("ort"), mask_on=False, seed=3, correction=1.0,
                                      class_weights=[0.5, 2.0, 4.0, 0.0])
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the session takes torch's thread count
    try:
        return path, Predictor.from_checkpoint(path), Predictor.from_checkpoint(path, engine="onnxruntime")
    finally:
        torch.set_num_threads(before)


def assert_same(expected, got):
    assert got["segmentation_image"].shape == expected["segmentation_image"].shape
    assert int((got["segmentation_image"] != expected["segmentation_image"]).sum()) == 0
    assert float((got["sem_seg"] - expected["sem_seg"]).abs().max()) <= 1e-4
    assert float((got["segmentation_confidence"] - expected["segmentation_confidence"]).abs().max()) <= 1e-4


def test_engine_runs_in_onnxruntime(semantic):
    _, torch_predictor, ort_predictor = semantic
    assert torch_predictor.engine == "torch" and torch_predictor.model.logits_engine is None
    assert ort_predictor.engine == "onnxruntime"
    assert isinstance(ort_predictor.model.logits_engine, OnnxRuntimeLogits)
    assert ort_predictor.model.logits_engine.session.get_providers() == ["CPUExecutionProvider"]
    options = ort_predictor.model.logits_engine.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.parametrize("size", [(48, 64), (37, 90), (130, 70)])
def test_whole_image_equals_the_torch_engine(semantic, size):
    _, torch_predictor, ort_predictor = semantic
    image = random_image(*size, seed=size[0])
    assert_same(torch_predictor(image), ort_predictor(image))


def test_a_batch_equals_the_torch_engine(semantic):
    _, torch_predictor, ort_predictor = semantic
    images = [random_image(48, 64, seed=s) for s in range(3)]
    for expected, got in zip(torch_predictor.predict_batch(images), ort_predictor.predict_batch(images)):
        assert_same(expected, got)


@pytest.mark.parametrize("merge", ["max", "mean"])
def test_tiles_equal_the_torch_engine(semantic, merge):
    _, torch_predictor, ort_predictor = semantic
    image = random_image(90, 150, seed=7)
    assert len(torch_predictor.tiled_segmenter(64, 0.5, merge).windows(90, 150)) > 1
    assert_same(torch_predictor(image, tile_size=64, merge=merge), ort_predictor(image, tile_size=64, merge=merge))


def test_engine_back_to_torch(semantic):
    path, torch_predictor, _ = semantic
    predictor = Predictor.from_checkpoint(path, engine="onnxruntime")
    use_engine(predictor.model, "torch")
    assert predictor.model.logits_engine is None
    image = random_image(48, 64, seed=1)
    assert torch.equal(predictor(image)["sem_seg"], torch_predictor(image)["sem_seg"])


def test_panoptic_fpn_with_onnxruntime_is_a_config_error(tmp_path):
    path, _, _ = save_tiny_checkpoint(tmp_path, mask_on=True, seed=1)
    with pytest.raises(ConfigError, match="semantic models only") as raised:
        Predictor.from_checkpoint(path, engine="onnxruntime")
    assert "\n" not in str(raised.value)
    with pytest.raises(ConfigError, match="semantic models only"):
        Predictor.from_checkpoint(path, ["TEST.ENGINE", "onnxruntime"])


def test_missing_onnxruntime_says_how_to_install_it(semantic, monkeypatch):
    _, torch_predictor, _ = semantic
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match="pip install onnxruntime"):
        use_engine(torch_predictor.model, "onnxruntime")
    assert torch_predictor.model.logits_engine is None


def test_engine_key_and_argument_are_checked(semantic):
    path, _, _ = semantic
    with pytest.raises(ConfigError, match="TEST.ENGINE = 'tensorrt'"):
        load_config(opts=["TEST.ENGINE", "tensorrt"])
    with pytest.raises(ConfigError, match="engine 'tensorrt'"):
        Predictor.from_checkpoint(path, engine="tensorrt")
    assert load_config(opts=["TEST.ENGINE", "onnxruntime"]).TEST.ENGINE == "onnxruntime"
