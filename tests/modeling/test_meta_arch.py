import math

import pytest
import torch

from segdet.config import get_cfg
from segdet.structures.metadata import Metadata
from segdet.errors import ConfigError
from segdet.structures.instances import Instances
from segdet.modeling import META_ARCH_REGISTRY, PanopticFPN, SemanticSegmentor, build_model

METADATA = Metadata(["background", "orange", "lemon", "border"], ignore_class_ids=[3], thing_class_ids=[1, 2])


def tiny_cfg(mask_on=True):
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.MASK_ON = mask_on
    cfg.MODEL.META_ARCHITECTURE = "PanopticFPN" if mask_on else "SemanticSegmentor"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM = 32
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 4
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 2
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 32
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = 50
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 50
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 64
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 32
    cfg.MODEL.ROI_MASK_HEAD.NUM_CONV = 1
    cfg.TEST.DETECTIONS_PER_IMAGE = 10
    return cfg


def train_input(h=64, w=48):
    sem = torch.zeros(h, w, dtype=torch.int64)
    sem[10:30, 10:30] = 1
    sem[9, 10:30] = 255  # a border pixel row
    masks = torch.zeros(1, h, w, dtype=torch.uint8)
    masks[0, 10:30, 10:30] = 1
    return {"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8), "sem_seg": sem,
            "weight": (sem != 255).float(), "height": h, "width": w,
            "instances": Instances((h, w), gt_boxes=torch.tensor([[10.0, 10.0, 30.0, 30.0]]),
                                   gt_classes=torch.tensor([1]), gt_masks=masks)}


def test_mask_off_builds_semantic_only_model():
    model = build_model(tiny_cfg(mask_on=False), METADATA)
    assert type(model) is SemanticSegmentor
    assert not any("roi_heads" in n or "rpn" in n for n, _ in model.named_parameters())


def test_panoptic_training_losses():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(), METADATA)
    assert isinstance(model, PanopticFPN)
    model.train()
    losses = model([train_input(), train_input(40, 56)])
    assert set(losses) == {"loss_sem_seg", "loss_objectness", "loss_rpn_box_reg", "loss_classifier",
                           "loss_box_reg", "loss_mask"}
    sum(losses.values()).backward()
    assert model.sem_seg_head.predictor.weight.grad is not None


def test_image_without_instances_trains():
    model = build_model(tiny_cfg(), METADATA).train()
    x = train_input()
    x["instances"] = Instances((64, 48), gt_boxes=torch.zeros(0, 4), gt_classes=torch.zeros(0, dtype=torch.int64),
                               gt_masks=torch.zeros(0, 64, 48, dtype=torch.uint8))
    losses = model([x])
    assert all(torch.isfinite(v) for v in losses.values())


def test_inference_outputs_at_original_size_and_never_ignore_class():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(), METADATA).eval()
    with torch.no_grad():
        # Make the ignore class the most likely everywhere: it must still never be chosen.
        model.sem_seg_head.predictor.bias[3] = 100.0
        out = model([{"image": torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8), "height": 80, "width": 112}])[0]
    assert out["sem_seg"].shape == (4, 80, 112)
    assert out["segmentation_image"].shape == (80, 112) and out["segmentation_image"].dtype == torch.int64
    assert out["segmentation_confidence"].shape == (80, 112)
    assert not (out["segmentation_image"] == 3).any()
    assert torch.allclose(out["sem_seg"].sum(0), torch.ones(80, 112), atol=1e-5)
    assert (out["sem_seg"][3] == 0).all()
    inst = out["instances"]
    assert inst.pred_masks.shape[1:] == (80, 112)
    assert set(inst.pred_classes.tolist()) <= {1, 2}
    pan, info = out["panoptic_seg"]
    assert pan.shape == (80, 112)
    assert {s["id"] for s in info} == set(pan.unique().tolist()) - {0}


def test_num_classes_mismatch_is_config_error():
    cfg = tiny_cfg()
    cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 5
    with pytest.raises(ConfigError, match="NUM_CLASSES = 5"):
        build_model(cfg, METADATA)
    cfg = tiny_cfg()
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 80
    with pytest.raises(ConfigError, match="ROI_HEADS.NUM_CLASSES = 80"):
        build_model(cfg, METADATA)


def _constant_logits_output(correction, class_weights, bias):
    """The semantic output of a model whose logits are `bias` at every pixel."""
    cfg = tiny_cfg(mask_on=False)
    cfg.MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION = correction
    model = build_model(cfg, METADATA).eval()
    model.set_training_class_weights(class_weights)
    with torch.no_grad():
        model.sem_seg_head.predictor.weight.zero_()
        model.sem_seg_head.predictor.bias.copy_(torch.tensor(bias))
        return model([{"image": torch.zeros(3, 32, 32, dtype=torch.uint8)}])[0]


@pytest.mark.parametrize("correction,expected_class", [(0.0, 1), (0.5, 2), (1.0, 2)])
def test_class_weight_correction_divides_scores_by_weight_to_the_power(correction, expected_class):
    # Logits 0, log 2, 0.2 (and the ignore class); class 1 was trained with weight 4.
    # Corrected: 0, log 2 - correction * log 4, 0.2: class 1 wins only without correction.
    out = _constant_logits_output(correction, [1.0, 4.0, 1.0, 0.0], [0.0, math.log(2.0), 0.2, 5.0])
    assert (out["segmentation_image"] == expected_class).all()


def test_full_class_weight_correction_gives_unweighted_probabilities():
    out = _constant_logits_output(1.0, [1.0, 4.0, 1.0, 0.0], [0.0, math.log(2.0), 0.2, 5.0])
    # Scores proportional to exp(logit) / weight: 1, 2 / 4, e^0.2 (sum 2.72140), ignore class 0.
    expected = [1 / 2.72140, 0.5 / 2.72140, 1.22140 / 2.72140, 0.0]
    assert torch.allclose(out["sem_seg"][:, 5, 7], torch.tensor(expected), atol=1e-4)
    assert torch.allclose(out["segmentation_confidence"], torch.full((32, 32), 1.22140 / 2.72140), atol=1e-4)


def test_training_class_weights_must_match_the_classes():
    model = build_model(tiny_cfg(mask_on=False), METADATA)
    with pytest.raises(ValueError, match="3 class weights for a model with 4 classes"):
        model.set_training_class_weights([1.0, 2.0, 3.0])


def test_meta_architecture_is_built_from_the_registry_by_name():
    @META_ARCH_REGISTRY.register()
    class UserSegmentor(SemanticSegmentor):
        pass

    try:
        cfg = tiny_cfg(mask_on=False)
        cfg.MODEL.META_ARCHITECTURE = "UserSegmentor"
        assert type(build_model(cfg, METADATA)) is UserSegmentor
    finally:
        META_ARCH_REGISTRY._obj_map.pop("UserSegmentor")


def test_unknown_or_contradicting_meta_architecture_is_a_config_error():
    cfg = tiny_cfg(mask_on=False)
    cfg.MODEL.META_ARCHITECTURE = "SemanticSegmenter"
    with pytest.raises(ConfigError, match="not a registered meta-architecture.*did you mean 'SemanticSegmentor'"):
        build_model(cfg, METADATA)
    cfg = tiny_cfg(mask_on=False)
    cfg.MODEL.META_ARCHITECTURE = "PanopticFPN"
    with pytest.raises(ConfigError, match="'PanopticFPN' has an instance branch but MODEL.MASK_ON is False"):
        build_model(cfg, METADATA)
    cfg = tiny_cfg(mask_on=True)
    cfg.MODEL.META_ARCHITECTURE = "SemanticSegmentor"
    with pytest.raises(ConfigError, match="'SemanticSegmentor' has no instance branch but MODEL.MASK_ON is True"):
        build_model(cfg, METADATA)
