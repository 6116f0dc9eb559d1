import collections
import os

import pytest
import torch
import torchvision

from segdet.checkpoint import SegdetCheckpointer, atomic_torch_save, load_checkpoint_file
from segdet.errors import CheckpointError
from segdet.modeling import build_model
from tests.modeling.test_meta_arch import METADATA, tiny_cfg


class NotData:
    """An arbitrary Python object: weights_only loading must refuse it."""


def test_atomic_save_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "m.pth"
    atomic_torch_save({"model": {"w": torch.ones(2)}}, str(path))
    assert os.listdir(tmp_path) == ["m.pth"]
    assert torch.equal(load_checkpoint_file(str(path))["model"]["w"], torch.ones(2))


def test_file_with_python_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "obj": NotData()}, str(path))
    with pytest.raises(CheckpointError, match="more than weights"):
        load_checkpoint_file(str(path))


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint_file(str(tmp_path / "none.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint_file(str(bad))


def test_segdet_checkpoint_roundtrip_with_metadata(tmp_path):
    model = build_model(tiny_cfg(mask_on=False), METADATA)
    ckpt = SegdetCheckpointer(model, str(tmp_path), extra_data={"metadata": METADATA.to_dict()})
    ckpt.save("model_x", iteration=7)
    assert ckpt.get_checkpoint_file().endswith("model_x.pth")
    other = build_model(tiny_cfg(mask_on=False), METADATA)
    extra = SegdetCheckpointer(other).load(str(tmp_path / "model_x.pth"))
    assert extra["iteration"] == 7 and extra["metadata"]["class_names"] == METADATA.class_names
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), k


def test_torchvision_imagenet_resnet_loads_into_backbone(tmp_path):
    resnet = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(resnet.state_dict(), str(path))
    model = build_model(tiny_cfg(mask_on=False), METADATA)
    SegdetCheckpointer(model).load(str(path))
    assert torch.equal(model.backbone.body.layer3[1].conv2.weight, resnet.layer3[1].conv2.weight)
    assert torch.equal(model.backbone.body.conv1.weight, resnet.conv1.weight)


def test_torchvision_mask_rcnn_loads_what_fits_and_reports_the_rest(tmp_path, caplog):
    tv = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    path = tmp_path / "maskrcnn.pth"
    torch.save(tv.state_dict(), str(path))
    cfg = tiny_cfg()
    cfg.MODEL.RESNETS.DEPTH = 50
    cfg.MODEL.FPN.OUT_CHANNELS = 256
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 1024
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 256
    cfg.MODEL.ROI_MASK_HEAD.NUM_CONV = 4
    model = build_model(cfg, METADATA)
    with caplog.at_level("INFO"):
        SegdetCheckpointer(model).load(str(path))
    assert torch.equal(model.backbone.fpn.layer_blocks[0][0].weight, tv.backbone.fpn.layer_blocks[0][0].weight)
    assert torch.equal(model.rpn.head.conv[0][0].weight, tv.rpn.head.conv[0][0].weight)
    assert torch.equal(model.roi_heads.box_head.fc6.weight, tv.roi_heads.box_head.fc6.weight)
    # The class-specific predictors have another shape (91 vs 3 classes): skipped and reported.
    assert not torch.equal(model.roi_heads.box_predictor.cls_score.weight[:3], tv.roi_heads.box_predictor.cls_score.weight[:3])
    assert "cls_score" in caplog.text and "sem_seg_head" in caplog.text


def test_unknown_state_dict_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(collections.OrderedDict(foo=torch.ones(1)), str(path))
    model = build_model(tiny_cfg(mask_on=False), METADATA)
    with pytest.raises(CheckpointError, match="unrecognized"):
        SegdetCheckpointer(model).load(str(path))
