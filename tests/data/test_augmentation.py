"""Augmentations keep image, segmentation and masks aligned, and fill labels with the ignore value."""
import numpy as np
import pytest
from fvcore.transforms.transform import BlendTransform, NoOpTransform, ScaleTransform

from segdet.config import get_cfg
from segdet.data.transforms import (
    AugmentationList,
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    ResizeShortestEdge,
    RotationTransform,
    apply_augmentations,
    build_augmentations,
    with_segmentation_fill,
)
from segdet.errors import ConfigError

IGNORE = 255
STEP = 60  # image value = class id * STEP


def _pattern(h=48, w=64, block=8, seed=0):
    """A label map of blocks of classes 0..3 and an image whose pixels encode their class."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 4, size=(h // block, w // block))
    label = np.kron(blocks, np.ones((block, block), dtype=np.int64)).astype(np.uint8)
    image = np.repeat((label.astype(np.int64) * STEP + 10)[:, :, None], 3, axis=2).astype(np.uint8)
    return image, label


def _interior(label, radius=2):
    """Pixels whose (2r+1)^2 neighbourhood has a single label value (away from region edges)."""
    h, w = label.shape
    padded = np.pad(label.astype(np.int64), radius, mode="constant", constant_values=-1)
    same = np.ones((h, w), dtype=bool)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            same &= padded[dy:dy + h, dx:dx + w] == label
    return same


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_image_and_labels_stay_aligned_through_resize_rotate_crop_flip(seed):
    image, label = _pattern(seed=seed)
    augs = [
        ResizeShortestEdge((72,), max_size=0),
        RandomRotation((20.0, 40.0), seg_pad_value=IGNORE),
        RandomCrop(80, 90, seg_pad_value=IGNORE),  # taller than the 72-pixel image: padded
        RandomFlip("both", prob=0.5),
    ]
    out_image, tfm = apply_augmentations(augs, image, np.random.default_rng(seed))
    out_label = tfm.apply_segmentation(label)
    assert out_image.shape == (80, 90, 3) and out_label.shape == (80, 90)
    interior = _interior(out_label)
    labeled = interior & (out_label != IGNORE)
    assert labeled.sum() > 1500  # the check below covers a good part of the crop
    expected = out_label[labeled].astype(np.int64) * STEP + 10
    assert np.abs(out_image[labeled][:, 0].astype(np.int64) - expected).max() <= 2
    # Uncovered area (rotation corners, padding): ignore in the labels, 0 in the image.
    uncovered = interior & (out_label == IGNORE)
    assert uncovered.sum() > 0
    assert out_image[uncovered].max() == 0
    assert set(np.unique(out_label)) <= {0, 1, 2, 3, IGNORE}


def test_augmentations_draw_only_from_the_given_rng():
    image, label = _pattern()
    augs = AugmentationList([RandomRotation((-30, 30)), RandomCrop(20, 20), RandomFlip("both"),
                             RandomBrightness(0.5, 1.5), RandomContrast(0.5, 1.5)])
    a_img, a_tfm = augs(image, np.random.default_rng(5))
    b_img, b_tfm = augs(image, np.random.default_rng(5))
    c_img, _ = augs(image, np.random.default_rng(6))
    assert np.array_equal(a_img, b_img)
    assert np.array_equal(a_tfm.apply_segmentation(label), b_tfm.apply_segmentation(label))
    assert not np.array_equal(a_img, c_img)
    # get_transform gives the same transform as calling the list.
    assert np.array_equal(augs.get_transform(image, np.random.default_rng(5)).apply_image(image), a_img)


def test_crop_within_a_larger_image_is_a_slice():
    image, label = _pattern(h=24, w=32)
    for seed in range(5):
        tfm = RandomCrop(10, 7).get_transform(image, np.random.default_rng(seed))
        crop = tfm.transforms[-1]
        assert 0 <= crop.x0 <= 32 - 7 and 0 <= crop.y0 <= 24 - 10
        assert np.array_equal(tfm.apply_image(image), image[crop.y0:crop.y0 + 10, crop.x0:crop.x0 + 7])
        assert np.array_equal(tfm.apply_segmentation(label), label[crop.y0:crop.y0 + 10, crop.x0:crop.x0 + 7])


def test_crop_larger_than_image_pads_image_with_0_and_labels_with_ignore():
    image = np.full((10, 12, 3), 200, dtype=np.uint8)
    label = np.full((10, 12), 1, dtype=np.uint8)
    tfm = RandomCrop(16, 8, seg_pad_value=IGNORE).get_transform(image, np.random.default_rng(0))
    out_image, out_label = tfm.apply_image(image), tfm.apply_segmentation(label)
    assert out_image.shape == (16, 8, 3) and out_label.shape == (16, 8)
    # Height 10 -> 16: rows 10..15 are padding (bottom); the width is cropped from 12.
    assert (out_image[:10] == 200).all() and (out_image[10:] == 0).all()
    assert (out_label[:10] == 1).all() and (out_label[10:] == IGNORE).all()
    # The same transform pads instance masks with 0 when asked.
    mask = np.ones((10, 12), dtype=np.uint8)
    out_mask = with_segmentation_fill(tfm, 0).apply_segmentation(mask)
    assert (out_mask[:10] == 1).all() and (out_mask[10:] == 0).all()


def test_rotation_by_90_is_np_rot90_counter_clockwise():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(7, 7, 3)).astype(np.uint8)
    label = rng.integers(0, 5, size=(7, 7)).astype(np.uint8)
    ccw = RotationTransform(7, 7, 90.0)
    assert np.array_equal(ccw.apply_image(image), np.rot90(image, k=1))
    assert np.array_equal(ccw.apply_segmentation(label), np.rot90(label, k=1))
    cw = RotationTransform(7, 7, -90.0)
    assert np.array_equal(cw.apply_segmentation(label), np.rot90(label, k=-1))
    # 180 degrees maps a non-square grid onto itself.
    rect = rng.integers(0, 5, size=(5, 8)).astype(np.uint8)
    assert np.array_equal(RotationTransform(5, 8, 180.0).apply_segmentation(rect), np.rot90(rect, k=2))
    # A box (continuous coordinates) follows the pixels: the 1x1 box of pixel (row 0, col 6)
    # lands on pixel (row 0, col 0) after a counter-clockwise quarter turn.
    box = ccw.apply_box(np.array([[6.0, 0.0, 7.0, 1.0]]))
    assert np.allclose(box, [[0.0, 0.0, 1.0, 1.0]])
    marker = np.zeros((7, 7), np.uint8)
    marker[0, 6] = 1
    assert ccw.apply_segmentation(marker)[0, 0] == 1


def test_rotation_keeps_size_and_fills_corners():
    image = np.full((20, 30, 3), 100, dtype=np.uint8)
    label = np.full((20, 30), 2, dtype=np.uint8)
    tfm = RotationTransform(20, 30, 45.0, seg_pad_value=IGNORE)
    out_image, out_label = tfm.apply_image(image), tfm.apply_segmentation(label)
    assert out_image.shape == image.shape and out_label.shape == label.shape
    assert out_label[0, 0] == IGNORE and out_label[-1, -1] == IGNORE and out_label[10, 15] == 2
    assert set(np.unique(out_label)) == {2, IGNORE}  # nearest: no mixed values
    assert out_image[0, 0].max() == 0 and (out_image[10, 15] == 100).all()
    assert with_segmentation_fill(tfm, 0).apply_segmentation(label)[0, 0] == 0
    assert tfm.seg_pad_value == IGNORE  # the copy did not change the original


def test_flip_matches_numpy_on_image_labels_masks_and_boxes():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(6, 9, 3)).astype(np.uint8)
    label = rng.integers(0, 4, size=(6, 9)).astype(np.uint8)
    mask = np.zeros((6, 9), np.uint8)
    mask[1:3, 0:4] = 1
    h_tfm = RandomFlip("horizontal", prob=1.0).get_transform(image, rng)
    assert np.array_equal(h_tfm.apply_image(image), np.fliplr(image))
    assert np.array_equal(h_tfm.apply_segmentation(label), np.fliplr(label))
    assert np.array_equal(h_tfm.apply_segmentation(mask), np.fliplr(mask))
    assert np.allclose(h_tfm.apply_box(np.array([[0.0, 1.0, 4.0, 3.0]])), [[5.0, 1.0, 9.0, 3.0]])
    v_tfm = RandomFlip("vertical", prob=1.0).get_transform(image, rng)
    assert np.array_equal(v_tfm.apply_image(image), np.flipud(image))
    assert np.array_equal(v_tfm.apply_segmentation(label), np.flipud(label))
    assert np.allclose(v_tfm.apply_box(np.array([[0.0, 1.0, 4.0, 3.0]])), [[0.0, 3.0, 4.0, 5.0]])
    both = RandomFlip("both", prob=1.0).get_transform(image, rng)
    assert np.array_equal(both.apply_segmentation(label), label[::-1, ::-1])
    assert isinstance(RandomFlip("horizontal", prob=0.0).get_transform(image, rng), NoOpTransform)
    assert isinstance(RandomFlip("none", prob=1.0).get_transform(image, rng), NoOpTransform)
    with pytest.raises(ConfigError):
        RandomFlip("diagonal")


def test_brightness_and_contrast_change_the_image_only():
    image = (np.arange(4 * 5 * 3).reshape(4, 5, 3) * 4).astype(np.uint8)  # even values 0..236
    label = np.arange(20).reshape(4, 5).astype(np.uint8)
    rng = np.random.default_rng(0)
    tfm = RandomBrightness(0.5, 0.5).get_transform(image, rng)
    assert isinstance(tfm, BlendTransform)
    assert np.array_equal(tfm.apply_image(image), image // 2)
    assert np.array_equal(tfm.apply_segmentation(label), label)
    tfm = RandomBrightness(1.5, 1.5).get_transform(image, rng)
    assert np.array_equal(tfm.apply_image(image), np.clip(image.astype(np.float64) * 1.5, 0, 255).astype(np.uint8))

    gray_mean = (image.astype(np.float64) @ [0.299, 0.587, 0.114]).mean()
    tfm = RandomContrast(2.0, 2.0).get_transform(image, rng)
    expected = np.clip(2.0 * image.astype(np.float64) - gray_mean, 0, 255)
    assert np.abs(tfm.apply_image(image).astype(np.float64) - expected).max() <= 1.0
    assert np.array_equal(tfm.apply_segmentation(label), label)
    # Factors are drawn from the range.
    factors = [RandomContrast(0.8, 1.2).get_transform(image, rng).dst_weight for _ in range(20)]
    assert min(factors) >= 0.8 and max(factors) <= 1.2 and len(set(factors)) > 1


def test_resize_shortest_edge_sizes_and_off_switch():
    image = np.zeros((48, 64, 3), np.uint8)
    rng = np.random.default_rng(0)
    tfm = ResizeShortestEdge((24,)).get_transform(image, rng)
    assert isinstance(tfm, ScaleTransform) and (tfm.new_h, tfm.new_w) == (24, 32)
    assert tfm.apply_image(image).shape == (24, 32, 3)
    tfm = ResizeShortestEdge((24,), max_size=30).get_transform(image, rng)
    assert (tfm.new_h, tfm.new_w) == (23, 30)  # 48 * 30/64 = 22.5, rounded half up
    assert isinstance(ResizeShortestEdge((0,)).get_transform(image, rng), NoOpTransform)
    sizes = {ResizeShortestEdge((30, 40), sample_style="range").get_transform(image, rng).new_h for _ in range(30)}
    assert min(sizes) >= 30 and max(sizes) <= 40 and len(sizes) > 2
    # Resizing labels uses nearest neighbour: no new values appear.
    label = np.kron(np.array([[0, 1], [2, 3]]), np.ones((24, 32))).astype(np.uint8)
    resized = ResizeShortestEdge((37,)).get_transform(image, rng).apply_segmentation(label)
    assert set(np.unique(resized)) == {0, 1, 2, 3}


def test_build_augmentations_from_config():
    cfg = get_cfg()
    cfg.INPUT.MIN_SIZE_TRAIN = (32, 48)
    cfg.INPUT.MAX_SIZE_TRAIN = 100
    cfg.INPUT.MIN_SIZE_TEST = 40
    cfg.INPUT.CROP.ENABLED = True
    cfg.INPUT.CROP.SIZE = [16, 24]
    cfg.INPUT.ROTATION.ENABLED = True
    cfg.INPUT.BRIGHTNESS = [0.8, 1.2]
    cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE = 254
    train = build_augmentations(cfg, is_train=True)
    assert [type(a) for a in train] == [ResizeShortestEdge, RandomRotation, RandomCrop, RandomFlip, RandomBrightness]
    assert train[1].seg_pad_value == 254 and train[2].seg_pad_value == 254
    assert (train[2].crop_h, train[2].crop_w) == (16, 24)
    test = build_augmentations(cfg, is_train=False)
    assert len(test) == 1 and isinstance(test[0], ResizeShortestEdge) and test[0].short_edge_lengths == (40,)
    defaults = get_cfg()
    assert [type(a) for a in build_augmentations(defaults, True)] == [RandomFlip]
    assert build_augmentations(defaults, False) == []
