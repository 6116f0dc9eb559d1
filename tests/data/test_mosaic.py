"""Mosaic augmentation: where each sample lands, the fill, the instances that are cut, and the
loader's draw (reproducible, bad partners replaced, off = unchanged)."""

import numpy as np
import pytest
import torch

from segdet.config import get_cfg
from segdet.data.build import TrainingMapDataset, build_train_loader
from segdet.data.mosaic import Mosaic
from segdet.errors import ConfigError, DataError
from segdet.structures.instances import Instances
from tests.data.test_loader import _cfg, _dataset, _mapper

FILL = (10, 20, 30)
IGNORE = 255


def _sample(k, h, w, masks=()):
    """A mapped sample whose every pixel is unique: image value 40 * k + 1 + its position's
    index (mod 40), sem_seg k, weight k + 0.5."""
    pattern = (np.arange(h * w).reshape(h, w) % 40 + 40 * k + 1).astype(np.uint8)
    sample = {
        "file_name": f"im{k}.png",
        "image": torch.from_numpy(np.stack([pattern] * 3)),
        "sem_seg": torch.full((h, w), k, dtype=torch.int64),
        "weight": torch.full((h, w), k + 0.5, dtype=torch.float32),
    }
    gt = np.zeros((len(masks), h, w), dtype=np.uint8)
    for m, (y0, y1, x0, x1) in enumerate(masks):
        gt[m, y0:y1, x0:x1] = 1
    sample["instances"] = Instances((h, w), gt_boxes=torch.zeros((len(masks), 4)),
                                    gt_classes=torch.full((len(masks),), k, dtype=torch.int64),
                                    gt_masks=torch.from_numpy(gt))
    return sample


def _centred(prob=1.0):
    """A mosaic whose centre is the canvas centre."""
    return Mosaic(prob, FILL, IGNORE, centre_range=(0.5, 0.5))


def test_each_sample_fills_its_quadrant_with_the_corner_that_faces_the_centre():
    samples = [_sample(k, 6, 8) for k in range(4)]  # canvas 6x8, centre (3, 4)
    out = _centred().combine(samples, np.random.default_rng(0))
    image = out["image"][0].numpy()
    pieces = [s["image"][0].numpy() for s in samples]
    np.testing.assert_array_equal(image[:3, :4], pieces[0][3:, 4:])  # its bottom-right
    np.testing.assert_array_equal(image[:3, 4:], pieces[1][3:, :4])  # its bottom-left
    np.testing.assert_array_equal(image[3:, :4], pieces[2][:3, 4:])  # its top-right
    np.testing.assert_array_equal(image[3:, 4:], pieces[3][:3, :4])  # its top-left
    expected_labels = np.array([[0] * 4 + [1] * 4] * 3 + [[2] * 4 + [3] * 4] * 3)
    np.testing.assert_array_equal(out["sem_seg"].numpy(), expected_labels)
    np.testing.assert_array_equal(out["weight"].numpy(), expected_labels + 0.5)
    assert out["mosaic_file_names"] == ["im0.png", "im1.png", "im2.png", "im3.png"]
    assert out["file_name"] == "im0.png"


def test_a_sample_smaller_than_its_quadrant_leaves_the_fill():
    samples = [_sample(0, 8, 8), _sample(1, 8, 8), _sample(2, 8, 8), _sample(3, 2, 3)]
    out = _centred().combine(samples, np.random.default_rng(0))
    # Sample 3 starts at the centre (4, 4): rows 4-5, columns 4-6; the rest of its quadrant is fill.
    np.testing.assert_array_equal(out["image"][:, 4:6, 4:7], samples[3]["image"])
    quadrant = np.zeros((8, 8), dtype=bool)
    quadrant[4:, 4:] = True
    quadrant[4:6, 4:7] = False
    for c, value in enumerate(FILL):
        assert (out["image"][c].numpy()[quadrant] == value).all()
    assert (out["sem_seg"].numpy()[quadrant] == IGNORE).all()
    assert (out["weight"].numpy()[quadrant] == 0).all()
    assert (out["sem_seg"].numpy()[~quadrant] != IGNORE).all()


def test_instances_are_cut_with_their_sample_and_dropped_when_nothing_is_left():
    # Canvas 8x8, centre (4, 4). Sample 0 puts its rows 4-7, columns 4-7 in the top-left quadrant.
    samples = [
        _sample(0, 8, 8, masks=[(0, 3, 0, 3),     # in the part cut away: dropped
                                (2, 6, 5, 8)]),   # cut to rows 4-5, columns 5-7 -> canvas rows 0-1, columns 1-3
        _sample(1, 8, 8),
        _sample(2, 8, 8),
        _sample(3, 8, 8, masks=[(1, 3, 0, 2)]),   # whole: its top-left goes to rows 5-6, columns 4-5
    ]
    out = _centred().combine(samples, np.random.default_rng(0))
    inst = out["instances"]
    assert inst.image_size == (8, 8)
    assert inst.gt_classes.tolist() == [0, 3]
    np.testing.assert_array_equal(inst.gt_boxes.numpy(), [[1, 0, 4, 2], [4, 5, 6, 7]])  # XYXY, one past the end
    expected = np.zeros((2, 8, 8), dtype=np.uint8)
    expected[0, 0:2, 1:4] = 1
    expected[1, 5:7, 4:6] = 1
    np.testing.assert_array_equal(inst.gt_masks.numpy(), expected)


def test_the_centre_is_drawn_within_its_range():
    mosaic = Mosaic(1.0, FILL, IGNORE)  # centre in [0.25, 0.75] of each side
    rng = np.random.default_rng(3)
    for _ in range(20):
        out = mosaic.combine([_sample(k, 40, 40) for k in range(4)], rng)
        labels = out["sem_seg"].numpy()
        cy = int((labels[:, 0] == 0).sum())  # rows of sample 0 in the first column
        cx = int((labels[0] == 0).sum())
        assert 10 <= cy <= 30 and 10 <= cx <= 30


def test_partners_are_drawn_with_the_probability():
    mosaic = Mosaic(0.3, FILL, IGNORE)
    rng = np.random.default_rng(0)
    draws = [mosaic.partners(rng, 5) for _ in range(2000)]
    share = sum(d is not None for d in draws) / len(draws)
    assert 0.26 < share < 0.34
    assert all(len(d) == 3 and all(0 <= i < 5 for i in d) for d in draws if d is not None)
    assert Mosaic(0.0, FILL, IGNORE).partners(rng, 5) is None


def test_loader_with_mosaic_is_reproducible_and_off_means_unchanged(tmp_path):
    dicts = _dataset(tmp_path)
    plain = TrainingMapDataset(dicts, _mapper(), seed=4, skip_bad_samples=False)
    never = TrainingMapDataset(dicts, _mapper(), seed=4, skip_bad_samples=False, mosaic=Mosaic(0.0, FILL, IGNORE))
    always = TrainingMapDataset(dicts, _mapper(), seed=4, skip_bad_samples=False, mosaic=Mosaic(1.0, FILL, IGNORE))
    a, b = plain[(3, 1)].sample, never[(3, 1)].sample
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["sem_seg"], b["sem_seg"])
    first, again = always[(3, 1)].sample, always[(3, 1)].sample
    assert len(first["mosaic_file_names"]) == 4 and first["mosaic_file_names"][0] == dicts[1]["file_name"]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["sem_seg"], again["sem_seg"])
    assert first["image"].shape == a["image"].shape  # the canvas is the first sample's size
    assert not torch.equal(first["image"], a["image"])


def test_a_bad_partner_is_replaced_and_counted(tmp_path):
    dicts = _dataset(tmp_path)
    (tmp_path / "im2.png").write_bytes(b"not an image")
    mosaic = Mosaic(1.0, FILL, IGNORE)
    strict = TrainingMapDataset(dicts, _mapper(), seed=4, skip_bad_samples=False, mosaic=mosaic)
    lenient = TrainingMapDataset(dicts, _mapper(), seed=4, skip_bad_samples=True, mosaic=mosaic)
    # Find a draw with image 2 among the partners.
    for position in range(50):
        partners = mosaic.partners(np.random.default_rng([4, position, 0, 1]), len(dicts))
        if partners is not None and 2 in partners:
            break
    else:
        raise AssertionError("no draw with partner 2 in 50 positions")
    with pytest.raises(DataError, match="im2.png"):
        strict._load(position, 0)
    loaded = lenient[(position, 0)]
    assert loaded.failure is None
    assert str(tmp_path / "im2.png") in loaded.skipped
    assert str(tmp_path / "im2.png") not in loaded.sample["mosaic_file_names"]
    assert str(tmp_path / "im3.png") in loaded.sample["mosaic_file_names"]  # the next good index


def test_config_switches_the_loader_to_mosaics(tmp_path):
    dicts = _dataset(tmp_path)
    cfg = _cfg()
    cfg.INPUT.MOSAIC.ENABLED = True
    cfg.INPUT.MOSAIC.PROB = 1.0
    batch = next(iter(build_train_loader(cfg, _mapper(), dicts)))
    assert all(len(d["mosaic_file_names"]) == 4 for d in batch)
    assert Mosaic.from_config(get_cfg()) is None


def test_mosaic_probability_outside_0_1_is_a_config_error():
    from segdet.config.config import validate_config

    cfg = get_cfg()
    cfg.INPUT.MOSAIC.PROB = 1.5
    with pytest.raises(ConfigError, match="INPUT.MOSAIC.PROB"):
        validate_config(cfg)
