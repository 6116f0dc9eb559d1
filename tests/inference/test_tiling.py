"""Tiled inference: windows, weights, merges against a direct numpy computation, and
equality with whole-image inference where one tile suffices."""
import numpy as np
import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from segdet.errors import ConfigError
from segdet.inference.tiling import TiledSegmenter, tile_starts, tile_weight, tile_windows, window_ramp
from segdet.modeling.meta_arch import SemanticSegmentor
from tests.inference.common import random_image, save_tiny_checkpoint, whole_image_output

# ----------------------------------------------------------------------------- windows


def test_tile_windows_hand_count():
    # 1000 rows, tiles of 512, stride 256: starts 0, 256 and the last one moved to 1000 - 512 = 488.
    # 600 columns: 0 and 600 - 512 = 88.
    windows = tile_windows(1000, 600, 512, 0.5)
    assert windows == [(0, 0, 512, 512), (0, 88, 512, 600), (256, 0, 768, 512), (256, 88, 768, 600),
                       (488, 0, 1000, 512), (488, 88, 1000, 600)]


def test_tile_starts_exact_multiple_and_no_overlap():
    assert tile_starts(1024, 512, 0.5) == [0, 256, 512]  # the last tile already ends at the border
    assert tile_starts(1024, 512, 0.0) == [0, 512]
    assert tile_starts(1030, 512, 0.0) == [0, 512, 518]
    assert tile_starts(10, 4, 0.75) == [0, 1, 2, 3, 4, 5, 6]  # stride 1
    assert tile_starts(512, 512, 0.5) == [0]


@pytest.mark.parametrize("height,width,tile,overlap", [(37, 53, 16, 0.5), (64, 20, 16, 0.25), (33, 33, 8, 0.0)])
def test_windows_cover_every_pixel_with_full_tiles_flush_with_the_border(height, width, tile, overlap):
    windows = tile_windows(height, width, tile, overlap)
    count = np.zeros((height, width), dtype=np.int64)
    for y0, x0, y1, x1 in windows:
        assert (y1 - y0, x1 - x0) == (min(tile, height), min(tile, width))  # never a partial tile
        assert 0 <= y0 and 0 <= x0 and y1 <= height and x1 <= width
        count[y0:y1, x0:x1] += 1
    assert count.min() >= 1
    assert max(w[2] for w in windows) == height and max(w[3] for w in windows) == width
    # Number of windows: per axis, ceil((length - tile) / stride) + 1.
    stride = max(1, int(tile * (1 - overlap)))
    per_axis = [1 if n <= tile else -(-(n - tile) // stride) + 1 for n in (height, width)]
    assert len(windows) == per_axis[0] * per_axis[1]


def test_single_window_when_the_image_fits():
    assert tile_windows(48, 64, 64, 0.5) == [(0, 0, 48, 64)]
    assert tile_windows(48, 200, 64, 0.5)[0] == (0, 0, 48, 64)  # fits in height only


def test_bad_tiling_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="tile size"):
        tile_windows(10, 10, 0, 0.5)
    with pytest.raises(ConfigError, match="overlap"):
        tile_windows(10, 10, 4, 1.0)
    with pytest.raises(ConfigError, match="merge"):
        TiledSegmenter(FakeModel(), 8, 0.5, merge="median")


def test_pyramid_weights_by_hand():
    assert torch.allclose(window_ramp(8), torch.tensor([1, 2, 3, 4, 4, 3, 2, 1]) / 4)
    assert torch.allclose(window_ramp(5), torch.tensor([1, 2, 3, 2, 1]) / 3)
    w = tile_weight(4, 6)
    assert w.shape == (4, 6) and (w > 0).all()
    assert torch.allclose(w[1], torch.tensor([1, 2, 3, 3, 2, 1]) / 3)
    assert torch.allclose(w[0], w[1] / 2)


# ----------------------------------------------------------------------------- merges with a fake model


class FakeModel(torch.nn.Module):
    """Class logits = pixel values / 64 + class * (position inside the tile): like a CNN's
    border effects, the same pixel gets other scores in another tile."""

    def __init__(self, ignore_class_ids=()):
        super().__init__()
        self.ignore_class_ids = list(ignore_class_ids)
        self.backbone = torch.nn.Identity()
        self.register_buffer("dummy", torch.zeros(1))
        self.calls = []

    @property
    def device(self):
        return self.dummy.device

    def preprocess_image(self, inputs):
        images = torch.stack([x["image"].float() for x in inputs])
        self.calls.append(len(inputs))
        return ImageList(images, [tuple(images.shape[-2:])] * len(inputs))

    def semantic_logits(self, x):
        return torch.from_numpy(fake_logits(x.numpy().transpose(0, 2, 3, 1)))

    # The batch's scores as segdet's models give them (what tiles call), on these logits.
    test_time_augmentation = None
    output_size = staticmethod(SemanticSegmentor.output_size)
    batch_scores = SemanticSegmentor.batch_scores

    def semantic_scores(self, logits, image_size, height, width):
        assert tuple(image_size) == (height, width)  # no test-time resize in these tests
        logits = logits[:, :height, :width].clone()
        logits[self.ignore_class_ids] = float("-inf")
        return logits.softmax(0)


def fake_logits(tiles):
    """(B, 3, h, w) logits of (B, h, w, 3) tiles, computed in numpy."""
    tiles = np.asarray(tiles, dtype=np.float32)
    h, w = tiles.shape[1:3]
    position = (np.arange(w)[None, :] + 2 * np.arange(h)[:, None]) / (w + 2 * h)
    classes = np.arange(3, dtype=np.float32)[:, None, None]
    return (tiles.transpose(0, 3, 1, 2) / 64.0 + classes * position).astype(np.float32)


def softmax(logits, ignore=()):
    logits = np.array(logits, dtype=np.float64)
    logits[list(ignore)] = -np.inf
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def reference_merge(image, windows, merge, ignore=()):
    """Full-image accumulators, every tile's scores computed in numpy."""
    h, w = image.shape[:2]
    acc = np.zeros((3, h, w))
    weight_sum = np.zeros((h, w))
    for y0, x0, y1, x1 in windows:
        scores = softmax(fake_logits(image[None, y0:y1, x0:x1])[0], ignore)
        if merge == "max":
            acc[:, y0:y1, x0:x1] = np.maximum(acc[:, y0:y1, x0:x1], scores)
        else:
            ty, tx = y1 - y0, x1 - x0
            ramp_y = np.minimum(np.arange(ty) + 1, ty - np.arange(ty)) / np.ceil(ty / 2)
            ramp_x = np.minimum(np.arange(tx) + 1, tx - np.arange(tx)) / np.ceil(tx / 2)
            weight = ramp_y[:, None] * ramp_x[None, :]
            acc[:, y0:y1, x0:x1] += scores * weight
            weight_sum[y0:y1, x0:x1] += weight
    return acc if merge == "max" else acc / weight_sum


def check_against(out, expected, ignore=()):
    assert torch.allclose(out["sem_seg"].double(), torch.from_numpy(expected), atol=1e-5)
    masked = expected.copy()
    masked[list(ignore)] = -1
    labels = masked.argmax(0)
    top2 = np.sort(masked, axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-4  # away from ties, where float32 and float64 may disagree
    seg = out["segmentation_image"].numpy()
    assert (seg[clear] == labels[clear]).all()
    assert np.allclose(out["segmentation_confidence"].numpy(), masked.max(0), atol=1e-5)
    assert not np.isin(seg, list(ignore)).any()


@pytest.mark.parametrize("merge", ["max", "mean"])
def test_two_overlapping_tiles(merge):
    image = random_image(8, 12, seed=1)
    windows = [(0, 0, 8, 8), (0, 4, 8, 12)]  # overlap in columns 4..7
    assert tile_windows(8, 12, 8, 0.5) == windows
    out = TiledSegmenter(FakeModel(), 8, 0.5, merge)(image)
    s0 = softmax(fake_logits(image[None, :, 0:8])[0])
    s1 = softmax(fake_logits(image[None, :, 4:12])[0])
    expected = np.zeros((3, 8, 12))
    expected[:, :, :4] = s0[:, :, :4]
    expected[:, :, 8:] = s1[:, :, 4:]
    if merge == "max":
        expected[:, :, 4:8] = np.maximum(s0[:, :, 4:], s1[:, :, :4])
    else:
        ramp = np.array([1, 2, 3, 4, 4, 3, 2, 1]) / 4  # column weights; the row weights cancel out
        w0, w1 = ramp[4:], ramp[:4]
        expected[:, :, 4:8] = (s0[:, :, 4:] * w0 + s1[:, :, :4] * w1) / (w0 + w1)
    check_against(out, expected)


@pytest.mark.parametrize("merge", ["max", "mean"])
def test_many_rows_and_columns_with_shifted_last_tiles(merge):
    # 21x27 in tiles of 8 (stride 4): rows start at 0 4 8 12 13, columns at 0 4 8 12 16 19.
    image = random_image(21, 27, seed=2)
    windows = tile_windows(21, 27, 8, 0.5)
    assert sorted({w[0] for w in windows}) == [0, 4, 8, 12, 13]
    assert sorted({w[1] for w in windows}) == [0, 4, 8, 12, 16, 19]
    model = FakeModel(ignore_class_ids=[1])
    out = TiledSegmenter(model, 8, 0.5, merge, batch_size=4)(image)
    check_against(out, reference_merge(image, windows, merge, ignore=[1]), ignore=[1])
    assert model.calls == [4, 2] * 5  # each row of 6 tiles in batches of at most 4
    if merge == "mean":
        assert torch.allclose(out["sem_seg"].sum(0), torch.ones(21, 27))


def test_no_overlap_is_the_tiles_side_by_side():
    image = random_image(16, 16, seed=3)
    expected = reference_merge(image, tile_windows(16, 16, 8, 0.0), "max")
    for merge in ("max", "mean"):
        out = TiledSegmenter(FakeModel(), 8, 0.0, merge)(image)
        check_against(out, expected)


class BorderArtifactModel(FakeModel):
    """Favours class 1 within 4 pixels of a tile's border, as a CNN with zero padding may."""

    def semantic_logits(self, x):
        return torch.from_numpy(border_logits(*x.shape[-2:])).expand(len(x), -1, -1, -1)


def border_logits(h, w):
    yy, xx = np.arange(h)[:, None], np.arange(w)[None, :]
    distance = np.minimum(np.minimum(yy, h - 1 - yy), np.minimum(xx, w - 1 - xx))
    logits = np.zeros((3, h, w), dtype=np.float32)
    logits[1] = 3.0 * (distance < 4)
    return logits


def test_mean_weights_hide_tile_borders():
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    windows = tile_windows(40, 40, 16, 0.5)
    blended = TiledSegmenter(BorderArtifactModel(), 16, 0.5, "mean")(image)["sem_seg"][1].numpy()
    # A plain average of the same tiles, for comparison.
    total, count = np.zeros((40, 40)), np.zeros((40, 40))
    for y0, x0, y1, x1 in windows:
        total[y0:y1, x0:x1] += softmax(border_logits(16, 16))[1]
        count[y0:y1, x0:x1] += 1
    plain = total / count
    inner = (slice(4, -4), slice(4, -5))  # away from the image border, where the artifact is real
    jump_blended = np.abs(np.diff(blended, axis=1))[inner].max()
    jump_plain = np.abs(np.diff(plain, axis=1))[inner].max()
    assert jump_plain > 0.25 and jump_blended < jump_plain / 3


def test_without_scores_the_segmentation_is_the_same():
    image = random_image(21, 27, seed=2)
    full = TiledSegmenter(FakeModel(), 8, 0.5, "mean")(image)
    lean = TiledSegmenter(FakeModel(), 8, 0.5, "mean")(image, return_scores=False)
    assert "sem_seg" not in lean
    assert torch.equal(lean["segmentation_image"], full["segmentation_image"])


# ----------------------------------------------------------------------------- a real (tiny) model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiling"), mask_on=False)


@pytest.mark.parametrize("merge", ["max", "mean"])
def test_one_tile_equals_whole_image_inference(tiny, merge):
    _, _, model = tiny
    image = random_image(48, 64)
    with torch.no_grad():
        whole = model([{"image": torch.from_numpy(image.transpose(2, 0, 1).copy()), "height": 48, "width": 64}])[0]
    out = TiledSegmenter(model, 64, 0.5, merge)(image)
    assert torch.equal(out["segmentation_image"], whole["segmentation_image"])
    assert torch.allclose(out["sem_seg"], whole["sem_seg"])
    assert torch.allclose(out["segmentation_confidence"], whole["segmentation_confidence"])


def test_tiles_follow_the_test_time_resize(tiny):
    _, cfg, model = tiny
    cfg = cfg.clone()
    cfg.INPUT.MIN_SIZE_TEST = 96  # 48x64 -> 96x128 for the network
    image = random_image(48, 64)
    from fvcore.transforms.transform import ScaleTransform

    resized = ScaleTransform(48, 64, 96, 128, interp="bilinear").apply_image(image)
    with torch.no_grad():
        whole = model([{"image": torch.from_numpy(resized.transpose(2, 0, 1).copy()), "height": 48, "width": 64}])[0]
    one_tile = TiledSegmenter.from_config(cfg, model, tile_size=128)
    assert one_tile.fits_one_tile(48, 64)
    out = one_tile(image)
    assert torch.equal(out["segmentation_image"], whole["segmentation_image"])
    assert torch.allclose(out["sem_seg"], whole["sem_seg"])
    # Tiles of 64 network pixels are 32 image pixels; at 50% overlap rows start at 0 16,
    # columns at 0 16 32; each tile is upscaled to 64x64 for the network.
    tiled = TiledSegmenter.from_config(cfg, model, tile_size=64, merge="mean")
    windows = tiled.windows(48, 64)
    assert sorted({w[0] for w in windows}) == [0, 16] and sorted({w[1] for w in windows}) == [0, 16, 32]
    assert all((w[2] - w[0], w[3] - w[1]) == (32, 32) for w in windows)
    assert tiled._network_size(32, 32, 48, 64) == (64, 64)
    out = tiled(image)
    assert out["segmentation_image"].shape == (48, 64) and out["sem_seg"].shape == (4, 48, 64)
    assert torch.allclose(out["sem_seg"].sum(0), torch.ones(48, 64), atol=1e-5)
    assert torch.equal(out["segmentation_image"], out["sem_seg"].argmax(0))


def test_an_image_the_test_resize_shrinks_into_one_tile_gets_a_warning(tiny, monkeypatch):
    from segdet.inference import tiling
    from tests.logs import captured_warnings

    _, cfg, model = tiny
    cfg = cfg.clone()
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = 24, 0  # 48x96 -> 24x48, within a tile of 64
    monkeypatch.setitem(tiling._warned, "resized_into_one_tile", False)
    with captured_warnings("segdet.inference.tiling") as messages:
        TiledSegmenter.from_config(cfg, model, tile_size=64)(random_image(48, 64))  # fits a tile as it is
        assert messages == []
        TiledSegmenter.from_config(cfg, model, tile_size=64)(random_image(48, 96))
        TiledSegmenter.from_config(cfg, model, tile_size=64)(random_image(48, 96))
    assert len(messages) == 1
    assert "48x96 image 24x48" in messages[0] and "INPUT.MIN_SIZE_TEST 0" in messages[0]


# The class weight correction (divide each class's score by its training weight to a power):
# tiles must apply it exactly as whole-image inference does.
CORRECTION_WEIGHTS = [1.0, 8.0, 0.5, 0.0]


@pytest.fixture(scope="module")
def corrected(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("corrected"), mask_on=False, seed=4, correction=1.0,
                                class_weights=CORRECTION_WEIGHTS)


def test_one_tile_applies_the_class_weight_correction(corrected):
    _, _, model = corrected
    image = random_image(48, 64, seed=5)
    whole = whole_image_output(model, image)
    model.class_weight_correction = 0.0
    try:
        uncorrected = whole_image_output(model, image)
    finally:
        model.class_weight_correction = 1.0
    # The correction matters for this model: one pixel in ten changes class.
    assert (whole["segmentation_image"] != uncorrected["segmentation_image"]).float().mean() > 0.1
    out = TiledSegmenter(model, 64, 0.5, "max")(image)
    assert torch.equal(out["segmentation_image"], whole["segmentation_image"])
    assert torch.allclose(out["sem_seg"], whole["sem_seg"], atol=1e-6)


@pytest.mark.parametrize("merge", ["max", "mean"])
def test_many_tiles_merge_the_corrected_scores_of_each_tile(corrected, merge):
    _, _, model = corrected
    image = random_image(40, 56, seed=6)
    windows = tile_windows(40, 56, 32, 0.5)
    assert len(windows) > 4
    # Reference: each tile's whole-image inference (corrected), merged by hand.
    total = torch.zeros(4, 40, 56)
    weights = torch.zeros(40, 56)
    for y0, x0, y1, x1 in windows:
        scores = whole_image_output(model, np.ascontiguousarray(image[y0:y1, x0:x1]))["sem_seg"]
        if merge == "max":
            total[:, y0:y1, x0:x1] = torch.maximum(total[:, y0:y1, x0:x1], scores)
        else:
            w = tile_weight(y1 - y0, x1 - x0)
            total[:, y0:y1, x0:x1] += scores * w
            weights[y0:y1, x0:x1] += w
    expected = total if merge == "max" else total / weights
    out = TiledSegmenter(model, 32, 0.5, merge)(image)
    assert torch.allclose(out["sem_seg"], expected, atol=1e-5)
    assert torch.equal(out["segmentation_image"], expected.argmax(0))
