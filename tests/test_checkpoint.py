import collections
import os

import pytest
import torch
import torchvision

from segdet.checkpoint import SegdetCheckpointer, atomic_torch_save, load_checkpoint_file, resume_candidates
from segdet.errors import CheckpointError
from segdet.modeling import build_model
from tests.logs import captured_warnings
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


def _saved_run(folder, iterations):
    """A checkpointer that saved model_<it>.pth for each iteration, as training does."""
    model = torch.nn.Linear(2, 2)
    ckpt = SegdetCheckpointer(model, str(folder))
    for it in iterations:
        ckpt.save(f"model_{it:07d}", iteration=it)
    return model, ckpt


def _cut(path):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])


def test_resume_falls_back_from_a_torn_newest_checkpoint_with_a_warning(tmp_path):
    _, ckpt = _saved_run(tmp_path, [1, 3, 5])
    _cut(tmp_path / "model_0000005.pth")
    with captured_warnings("segdet.checkpoint") as warnings:
        data = ckpt.resume()
    assert data["iteration"] == 3
    assert len(warnings) == 1 and "model_0000005.pth" in warnings[0] and "trying the previous" in warnings[0]


def test_resume_prefers_a_file_saved_after_the_last_tag(tmp_path):
    # A kill between writing model_0000005.pth and naming it in last_checkpoint.
    _, ckpt = _saved_run(tmp_path, [1, 3])
    tagged = (tmp_path / "last_checkpoint").read_text()
    ckpt.save("model_0000005", tag_last=False, iteration=5)
    assert tagged == "model_0000003.pth"
    assert resume_candidates(str(tmp_path)) == [str(tmp_path / f"model_000000{i}.pth") for i in (5, 3, 1)]
    assert ckpt.resume()["iteration"] == 5


def test_resume_candidates_follow_the_tag_not_stale_files(tmp_path):
    # model_0000009.pth of an older run in the same folder, older than the file the tag names.
    _, ckpt = _saved_run(tmp_path, [9])
    os.utime(tmp_path / "model_0000009.pth", ns=(1, 1))
    ckpt.save("model_0000001", iteration=1)
    ckpt.save("model_final", iteration=2)
    assert resume_candidates(str(tmp_path)) == [str(tmp_path / n) for n in
                                                ("model_final.pth", "model_0000009.pth", "model_0000001.pth")]
    os.remove(tmp_path / "model_final.pth")  # the tag names a missing file: every other one, newest first
    with captured_warnings("segdet.checkpoint") as warnings:
        assert resume_candidates(str(tmp_path)) == [str(tmp_path / "model_0000009.pth"),
                                                    str(tmp_path / "model_0000001.pth")]
    assert "names model_final.pth, which is missing" in warnings[0]
