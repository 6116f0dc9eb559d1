"""The Python API: Predictor(cfg) and Predictor.from_checkpoint on image arrays."""
import subprocess
import sys

import numpy as np
import pytest
import torch

import segdet
from segdet.checkpoint import atomic_torch_save
from segdet.data.catalog import DatasetCatalog, MetadataCatalog, register_dataset
from segdet.errors import CheckpointError, ConfigError, DataError
from segdet.inference.predictor import Predictor
from segdet.inference.tiling import TiledSegmenter
from tests.inference.common import random_image, save_tiny_checkpoint
from tests.modeling.test_meta_arch import METADATA


def run_model(model, image, height=None, width=None):
    with torch.no_grad():
        return model([{"image": torch.from_numpy(image.transpose(2, 0, 1).copy()),
                       "height": height or image.shape[0], "width": width or image.shape[1]}])[0]


@pytest.fixture(scope="module")
def semantic(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("semantic"), mask_on=False)


@pytest.fixture(scope="module")
def panoptic(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("panoptic"), mask_on=True, seed=1)


def test_predictor_from_config_matches_the_trained_model(semantic):
    path, cfg, model = semantic
    cfg = cfg.clone()
    cfg.MODEL.WEIGHTS = path
    predictor = Predictor(cfg)  # no dataset in the config: the classes come from the checkpoint
    assert predictor.metadata.class_names == METADATA.class_names
    assert predictor.metadata.ignore_class_ids == [3]
    assert not predictor.model.training
    image = random_image()
    out = predictor(image)
    expected = run_model(model, image)
    assert set(out) == {"sem_seg", "segmentation_image", "segmentation_confidence"}
    assert torch.equal(out["segmentation_image"], expected["segmentation_image"])
    assert torch.equal(out["sem_seg"], expected["sem_seg"])
    assert out["segmentation_image"].device.type == "cpu"


def test_from_checkpoint_with_instances_and_gray_input(panoptic):
    path, _, model = panoptic
    predictor = Predictor.from_checkpoint(path, ["MODEL.DEVICE", "cpu"])
    assert predictor.instances_on and predictor.cfg.MODEL.DEVICE == "cpu"
    gray = random_image()[:, :, 0]
    out = predictor(gray)
    expected = run_model(model, np.repeat(gray[:, :, None], 3, axis=2))
    assert torch.equal(out["segmentation_image"], expected["segmentation_image"])
    assert out["instances"].pred_masks.shape[1:] == (48, 64)
    assert torch.equal(out["instances"].scores, expected["instances"].scores)
    assert out["panoptic_seg"][0].shape == (48, 64)
    lean = Predictor(path)(gray, return_scores=False)  # a checkpoint path works as the config too
    assert torch.equal(lean["segmentation_image"], out["segmentation_image"]) and "sem_seg" not in lean


def test_test_time_resize_from_the_config_and_outputs_at_the_original_size(semantic):
    path, _, model = semantic
    predictor = Predictor.from_checkpoint(path, ["INPUT.MIN_SIZE_TEST", "96"])
    image = random_image(48, 64)
    out = predictor(image)
    from fvcore.transforms.transform import ScaleTransform

    resized = ScaleTransform(48, 64, 96, 128, interp="bilinear").apply_image(image)
    expected = run_model(model, resized, 48, 64)
    assert out["segmentation_image"].shape == (48, 64)
    assert torch.equal(out["segmentation_image"], expected["segmentation_image"])


def test_batch_of_mixed_sizes_equals_one_by_one(semantic):
    path, _, _ = semantic
    predictor = Predictor.from_checkpoint(path)
    images = [random_image(48, 64, seed=1), random_image(40, 56, seed=2), random_image(48, 64, seed=3)]
    batch = predictor.predict_batch(images)
    for image, out in zip(images, batch):
        single = predictor(image)
        assert out["segmentation_image"].shape == image.shape[:2]
        assert torch.equal(out["segmentation_image"], single["segmentation_image"])
        assert torch.allclose(out["sem_seg"], single["sem_seg"], atol=1e-4)  # batched convolutions round differently


def test_tiling_from_the_config_with_instances_for_tiled_images(panoptic):
    path, _, model = panoptic
    predictor = Predictor.from_checkpoint(path, ["TEST.TILE_SIZE", "64", "TEST.TILE_MERGE", "mean"])
    small = random_image(48, 64)
    whole = Predictor.from_checkpoint(path)(small)
    one_tile = predictor(small)  # fits one tile: whole-image inference
    assert torch.equal(one_tile["segmentation_image"], whole["segmentation_image"])
    assert torch.equal(one_tile["instances"].pred_masks, whole["instances"].pred_masks)
    image = random_image(80, 100)
    big = predictor(image)
    assert set(big) == {"sem_seg", "segmentation_image", "segmentation_confidence", "instances", "panoptic_seg"}
    assert big["segmentation_image"].shape == (80, 100) and big["panoptic_seg"][0].shape == (80, 100)
    assert torch.allclose(big["sem_seg"].sum(0), torch.ones(80, 100), atol=1e-5)  # "mean" keeps probabilities
    # Instances stitched across the tiles, masks as crops; the same as the tiler's own.
    instances = big["instances"]
    expected = TiledSegmenter(model, 64, 0.5, "mean")(image)["instances"]
    assert len(instances) > 0 and instances.has("pred_mask_crops") and not instances.has("pred_masks")
    assert torch.equal(instances.scores, expected.scores) and torch.equal(instances.pred_boxes, expected.pred_boxes)
    # A call's own tile size wins over the config's; 0 turns tiling off.
    assert predictor(image, tile_size=0)["instances"].has("pred_masks")


def test_missing_or_unfit_model_files(tmp_path, semantic):
    path, cfg, model = semantic
    with pytest.raises(CheckpointError, match="MODEL.WEIGHTS"):
        Predictor(cfg)
    with pytest.raises(CheckpointError, match="not found"):
        Predictor(cfg, weights=str(tmp_path / "none.pth"))
    other = cfg.clone()
    other.MODEL.SEM_SEG_HEAD.CONVS_DIM = 16
    with pytest.raises(CheckpointError, match="does not fit"):
        Predictor(other, weights=path)
    other = cfg.clone()
    other.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 5
    with pytest.raises(ConfigError, match="NUM_CLASSES = 5"):
        Predictor(other, weights=path)
    bare = str(tmp_path / "bare.pth")
    atomic_torch_save({"model": model.state_dict()}, bare)
    with pytest.raises(CheckpointError, match="no class metadata"):
        Predictor(cfg, weights=bare)
    with pytest.raises(CheckpointError, match="holds no config"):
        Predictor.from_checkpoint(bare)


def test_classes_from_the_config_dataset_when_the_checkpoint_has_none(tmp_path, semantic):
    _, cfg, model = semantic
    bare = str(tmp_path / "bare.pth")
    atomic_torch_save({"model": model.state_dict()}, bare)
    register_dataset("predictor_test_dataset", lambda: [], METADATA)
    try:
        cfg = cfg.clone()
        cfg.DATASETS.TEST = ("predictor_test_dataset",)
        predictor = Predictor(cfg, weights=bare)
        assert predictor.metadata.class_names == METADATA.class_names
        image = random_image()
        assert torch.equal(predictor(image)["segmentation_image"], run_model(model, image)["segmentation_image"])
    finally:
        DatasetCatalog.remove("predictor_test_dataset")
        MetadataCatalog.remove("predictor_test_dataset")


def test_bad_image_arrays(semantic):
    predictor = Predictor.from_checkpoint(semantic[0])
    with pytest.raises(DataError, match="uint8"):
        predictor(random_image().astype(np.float32))
    with pytest.raises(DataError, match="shape"):
        predictor(np.zeros((4, 48, 64), dtype=np.uint8))


def test_lazy_predictor_export():
    assert segdet.Predictor is Predictor
    code = "import sys, segdet; assert 'torch' not in sys.modules, 'import segdet loaded torch'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with pytest.raises(AttributeError):
        segdet.NotAThing
