"""Test-time augmentation (TEST.AUG): the scores averaged over (scale, flip) variants, through every
door (the model's forward, Predictor, tiles), against scores computed by hand from plain passes."""
import numpy as np
import pytest
import torch
from torch import nn

from segdet.inference.predictor import Predictor
from segdet.modeling import build_model
from segdet.modeling.test_time_augmentation import SemanticTTA
from tests.inference.common import random_image, save_tiny_checkpoint, whole_image_output
from tests.modeling.test_meta_arch import METADATA, tiny_cfg

CPU = ["MODEL.DEVICE", "cpu"]


def tta(min_sizes, flip=True, *more):
    return [*CPU, "TEST.AUG.ENABLED", "True", "TEST.AUG.MIN_SIZES", str(tuple(min_sizes)), "TEST.AUG.FLIP",
            str(flip), *more]


def network_sizes(predictor):
    """The (h, w) of every image the model's network is given, recorded at each preprocess_image."""
    sizes = []
    original = predictor.model.preprocess_image

    def recording(inputs):
        sizes.extend(tuple(x["image"].shape[-2:]) for x in inputs)
        return original(inputs)

    predictor.model.preprocess_image = recording
    return sizes


def test_flip_of_a_symmetric_image_is_the_mean_of_its_scores_and_their_mirror(tmp_path):
    path, _, model = save_tiny_checkpoint(tmp_path)
    half = random_image(40, 28, seed=1)
    image = np.ascontiguousarray(np.concatenate([half, half[:, ::-1]], axis=1))  # 40 x 56, mirror-symmetric
    # Two plain passes: the image, and the image mirrored (the same pixels) with its scores mirrored back.
    plain = whole_image_output(model, image)["sem_seg"]
    mirrored = whole_image_output(model, np.ascontiguousarray(image[:, ::-1]))["sem_seg"].flip(-1)
    # The model is not symmetric (56 px are padded to 64 at the right), so the mean is not the plain scores.
    assert (plain - mirrored).abs().max() > 1e-3
    out = Predictor.from_checkpoint(path, tta([40]))(image)  # 40 = the short side: the image as it is
    expected = (plain + mirrored) / 2
    assert torch.allclose(out["sem_seg"], expected, atol=1e-6)
    assert torch.equal(out["segmentation_image"], expected[:3].argmax(0))  # class 3 is the ignore class
    assert torch.allclose(out["segmentation_confidence"], expected.max(0).values, atol=1e-6)


def flip_equivariant_model():
    """A SemanticSegmentor whose network is a 3x3 convolution with left-right symmetric kernels, a
    ReLU and a 1x1 convolution, at stride 1: mirroring its input mirrors its logits."""
    model = build_model(tiny_cfg(mask_on=False), METADATA).eval()
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_((conv.weight + conv.weight.flip(-1)) / 2)
    model.backbone = nn.Identity()
    model.sem_seg_head = nn.Sequential(conv, nn.ReLU(), nn.Conv2d(8, 4, 1))
    return model


def test_flip_of_a_flip_equivariant_model_changes_nothing():
    model = flip_equivariant_model()
    image = random_image(64, 96, seed=2)  # multiples of 32: no padding, which would break the symmetry
    plain = whole_image_output(model, image)["sem_seg"]
    # The premise, checked: mirrored input -> mirrored scores; and the scores themselves are not symmetric.
    assert torch.allclose(whole_image_output(model, np.ascontiguousarray(image[:, ::-1]))["sem_seg"].flip(-1),
                          plain, atol=1e-6)
    assert (plain - plain.flip(-1)).abs().max() > 1e-2
    model.test_time_augmentation = SemanticTTA([64], flip=True)
    assert torch.allclose(whole_image_output(model, image)["sem_seg"], plain, atol=1e-6)


@pytest.mark.parametrize("flip", [False, True])
def test_two_scales_are_the_mean_of_the_variants_each_predicted_at_its_test_size(tmp_path, flip):
    path, _, _ = save_tiny_checkpoint(tmp_path)
    image = random_image(48, 64, seed=3)
    # By hand: each scale is the plain model with INPUT.MIN_SIZE_TEST at that short side, and each
    # flip the mirrored image's scores mirrored back.
    variants = []
    for short_side in (32, 56):
        plain = Predictor.from_checkpoint(path, [*CPU, "INPUT.MIN_SIZE_TEST", str(short_side)])
        variants.append(plain(image)["sem_seg"])
        if flip:
            variants.append(plain(np.ascontiguousarray(image[:, ::-1]))["sem_seg"].flip(-1))
    expected = torch.stack(variants).mean(0)
    predictor = Predictor.from_checkpoint(path, tta([32, 56], flip))
    sizes = network_sizes(predictor)
    out = predictor(image)
    assert sizes == [size for size in ((32, 43), (56, 75)) for _ in range(1 + flip)]  # ResizeShortestEdge's sizes
    assert out["sem_seg"].shape == (4, 48, 64)
    assert torch.allclose(out["sem_seg"], expected, atol=1e-6)
    assert (out["sem_seg"] - variants[0]).abs().max() > 1e-3  # the variants differ: the mean is not one of them
    assert torch.equal(out["segmentation_image"], expected[:3].argmax(0))


def test_one_scale_at_the_image_size_without_flip_is_plain_inference_exactly(tmp_path):
    for mask_on in (False, True):
        path, _, _ = save_tiny_checkpoint(tmp_path / str(mask_on), mask_on=mask_on)
        plain = Predictor.from_checkpoint(path, CPU)
        same = Predictor.from_checkpoint(path, tta([48], flip=False))
        image = random_image(48, 64, seed=4)
        for tile in (None, 32):
            a, b = plain(image, tile_size=tile), same(image, tile_size=tile)
            for key in ("sem_seg", "segmentation_image", "segmentation_confidence"):
                assert torch.equal(a[key], b[key]), (mask_on, tile, key)
            if mask_on:
                assert torch.equal(a["instances"].pred_boxes, b["instances"].pred_boxes)
                assert torch.equal(a["panoptic_seg"][0], b["panoptic_seg"][0])


def test_multi_scale_outputs_are_at_the_image_size_whole_and_tiled(tmp_path):
    path, _, _ = save_tiny_checkpoint(tmp_path)
    plain = Predictor.from_checkpoint(path, CPU)
    predictor = Predictor.from_checkpoint(path, tta([48, 96]))
    image = random_image(96, 128, seed=5)
    sizes = network_sizes(predictor)
    for tile in (None, 64):
        out = predictor(image, tile_size=tile)
        assert out["sem_seg"].shape == (4, 96, 128)
        assert out["segmentation_image"].shape == out["segmentation_confidence"].shape == (96, 128)
        if tile is None:  # (tiles are merged by their maximum)
            assert torch.allclose(out["sem_seg"].sum(0), torch.ones(96, 128), atol=1e-5)
        assert (out["sem_seg"] - plain(image, tile_size=tile)["sem_seg"]).abs().max() > 1e-3
    whole, tiled = sizes[:4], sizes[4:]
    # Whole image: short side 48 (half size) and 96 (its own size), each also flipped.
    assert sorted(set(whole)) == [(48, 64), (96, 128)]
    # Tiles of 64 px of the original image: each scaled by its image's factor, 0.5 and 1.
    assert sorted(set(tiled)) == [(32, 32), (64, 64)] and len(tiled) == 6 * 4


def test_a_scale_is_the_short_side_of_the_original_image_whatever_the_test_resize(tmp_path):
    path, _, _ = save_tiny_checkpoint(tmp_path)
    image = random_image(48, 64, seed=6)
    # The mapper resizes to a 32 px short side; the variant at 48 is the original size again.
    predictor = Predictor.from_checkpoint(path, tta([48], False, "INPUT.MIN_SIZE_TEST", "32"))
    sizes = network_sizes(predictor)
    assert predictor(image)["sem_seg"].shape == (4, 48, 64)
    assert sizes == [(48, 64)]


def test_panoptic_keeps_the_instances_of_the_plain_pass_and_fuses_the_averaged_segmentation(tmp_path):
    path, _, _ = save_tiny_checkpoint(tmp_path, mask_on=True)
    image = random_image(48, 64, seed=7)
    plain = Predictor.from_checkpoint(path, CPU)(image)
    predictor = Predictor.from_checkpoint(path, tta([48, 32]))
    passes = []
    predictor.model.backbone.register_forward_hook(lambda module, args, out: passes.append(args[0].shape))
    out = predictor(image)
    # The plain pass (with the detector) is the unflipped variant at 48: 4 variants, 4 passes.
    assert len(passes) == 4
    assert (out["sem_seg"] - plain["sem_seg"]).abs().max() > 1e-3
    for field in ("pred_boxes", "scores", "pred_classes", "pred_masks"):
        assert torch.equal(out["instances"].get(field), plain["instances"].get(field)), field
    expected = predictor.model.panoptic_result(out["instances"], out["segmentation_image"])
    assert torch.equal(out["panoptic_seg"][0], expected[0]) and out["panoptic_seg"][1] == expected[1]


def test_tta_runs_the_network_under_test_amp_and_channels_last(tmp_path):
    path, _, _ = save_tiny_checkpoint(tmp_path)
    image = random_image(48, 64, seed=8)
    reference = Predictor.from_checkpoint(path, tta([32, 48]))(image)
    amp = Predictor.from_checkpoint(path, tta([32, 48], True, "TEST.AMP.ENABLED", "True", "MODEL.CHANNELS_LAST", "True"))
    dtypes = []
    amp.model.backbone.body.conv1.register_forward_hook(lambda m, args, out: dtypes.append(out.dtype))
    out = amp(image)
    assert dtypes == [torch.bfloat16] * 4
    assert out["sem_seg"].dtype == torch.float32
    assert (out["sem_seg"] - reference["sem_seg"]).abs().mean() < 0.005
