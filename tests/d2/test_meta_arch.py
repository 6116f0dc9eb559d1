"""SegdetPanopticFPN and SegdetSemanticSegmentor: detectron2's outputs plus segdet's, at the original size."""
import numpy as np
import pytest
import torch

from tests.d2.conftest import SKIP_REASON

pytest.importorskip("detectron2._C", reason=SKIP_REASON)

from detectron2.data import DatasetCatalog as D2DatasetCatalog  # noqa: E402
from detectron2.modeling import PanopticFPN, SemanticSegmentor, build_model  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from segdet.d2 import SegdetDatasetMapper, SegdetPanopticFPN, SegdetSemanticSegmentor, segdet_metadata  # noqa: E402

CLASS_WEIGHTS = [1.0, 2.0, 0.5, 4.0, 0.0]
CORRECTION = 0.5  # the tiny config's MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION


def _inputs():
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, 48, 64), generator=g, dtype=torch.uint8)
    return [{"image": image, "height": 96, "width": 128}]


def _expected_semantic(logits):
    """segdet's scores from detectron2's raw logits, by hand: divide each class's probability by its
    weight ** correction (weight 0: no change), no probability for the ignore class 4, renormalize."""
    logits = logits.double().numpy()
    offsets = np.array([CORRECTION * np.log(w) if w > 0 else 0.0 for w in CLASS_WEIGHTS])[:, None, None]
    e = np.exp(logits - offsets - logits.max(axis=0))
    e[4] = 0.0
    scores = e / e.sum(axis=0)
    return scores, scores[:4].argmax(axis=0), scores[:4].max(axis=0)


def _model(cfg, cls):
    model = build_model(cfg)
    assert isinstance(model, cls)
    model.set_training_class_weights(CLASS_WEIGHTS)
    return model.eval()


def _check_semantic(out, raw_logits):
    scores, segmentation, confidence = _expected_semantic(raw_logits)
    assert tuple(out["sem_seg"].shape) == (5, 96, 128)
    np.testing.assert_allclose(out["sem_seg"].numpy(), scores, atol=1e-5)
    assert tuple(out["segmentation_image"].shape) == (96, 128)
    np.testing.assert_array_equal(out["segmentation_image"].numpy(), segmentation)
    np.testing.assert_allclose(out["segmentation_confidence"].numpy(), confidence, atol=1e-5)


@torch.no_grad()
def test_panoptic_fpn_outputs_at_the_original_size(tiny_cfg_factory):
    cfg = tiny_cfg_factory(opts=["MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH", "0.0",
                                 "MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT", "1"])
    model = _model(cfg, SegdetPanopticFPN)
    inputs = _inputs()
    out = model(inputs)[0]
    reference = PanopticFPN.inference(model, inputs)[0]  # detectron2's own path over the same modules
    _check_semantic(out, reference["sem_seg"])
    instances = out["instances"]
    assert instances.image_size == (96, 128) and len(instances) > 0
    torch.testing.assert_close(instances.pred_boxes.tensor, reference["instances"].pred_boxes.tensor)
    assert tuple(instances.pred_masks.shape[1:]) == (96, 128)
    assert int(instances.pred_classes.max()) <= 2  # thing indices
    seg, segments = out["panoptic_seg"]
    assert tuple(seg.shape) == (96, 128) and segments
    for s in segments:
        assert s["category_id"] in ((0, 1, 2) if s["isthing"] else (0,))  # things by index, stuff: background


@torch.no_grad()
def test_semantic_segmentor_outputs_at_the_original_size(tiny_cfg_factory):
    cfg = tiny_cfg_factory(mask_on=False, name="semantic")
    model = _model(cfg, SegdetSemanticSegmentor)
    inputs = _inputs()
    out = model(inputs)[0]
    assert set(out) == {"sem_seg", "segmentation_image", "segmentation_confidence"}
    _check_semantic(out, SemanticSegmentor.forward(model, inputs)[0]["sem_seg"])


def test_training_losses_use_the_weight_image(tiny_cfg_factory):
    cfg = tiny_cfg_factory()
    torch.manual_seed(0)
    model = build_model(cfg).train()
    mapper = SegdetDatasetMapper.from_config(cfg, is_train=True, metadata=segdet_metadata(cfg))
    np.random.seed(0)
    batch = [mapper(d) for d in D2DatasetCatalog.get("tiny_train")[:2]]
    with EventStorage():  # detectron2's heads log to it in training
        losses = model(batch)
    assert {"loss_sem_seg", "loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg", "loss_mask"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    features = model.backbone(model.preprocess_image(batch).tensor)
    plain = float(model.semantic_losses(features, batch)["loss_sem_seg"])
    heavier_background = [dict(x, weight=torch.where(x["sem_seg"] == 0, 5.0, 1.0) * (x["sem_seg"] != 255))
                          for x in batch]
    assert float(model.semantic_losses(features, heavier_background)["loss_sem_seg"]) != pytest.approx(plain)
    without = [{k: v for k, v in x.items() if k != "weight"} for x in batch]
    assert float(model.semantic_losses(features, without)["loss_sem_seg"]) == pytest.approx(plain, rel=1e-5)
