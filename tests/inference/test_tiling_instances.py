"""Tiled inference with instances, end to end through TiledSegmenter: a mosaic of demo scenes (the
ground truth assembled the same way) against each scene predicted alone, with an instance branch
that detects exactly what a tile shows (so cut objects come in parts, as from a detector at a tile
border); and a real (tiny, random) Panoptic FPN where the answer is known exactly."""
import tracemalloc

import numpy as np
import pytest
import torch

from segdet.inference.tiling import TiledSegmenter
from segdet.modeling.postprocess import combine_semantic_and_instances
from segdet.structures.coco import instances_to_coco_results
from segdet.structures.cropped_masks import CroppedMasks, instance_mask_crops
from segdet.structures.instances import Instances
from segdet.structures.masks import mask_boxes
from segdet.synthetic.fruit import render_fruit_scene
from tests.inference.common import random_image, save_tiny_checkpoint, whole_image_output
from tests.inference.test_tiling import FakeModel

CELL = 192


class TileContentDetector(FakeModel):
    """FakeModel's semantic path plus an instance branch that sees instances in the pixels: red =
    instance id, green = class id. It detects every id a tile shows, as much of it as the tile
    shows, boxed by that part, with a score that depends on the id only."""

    has_instances = True
    combine_on = True

    def logits_and_detections(self, images):
        return self.semantic_logits(images.tensors), [{"pixels": t} for t in images.tensors]

    def instances_result(self, detections, image_size, height, width, cropped=False):
        assert cropped and tuple(image_size) == (height, width)
        ids = detections["pixels"][0, :height, :width].round().to(torch.int64).numpy()
        classes = detections["pixels"][1, :height, :width].round().to(torch.int64).numpy()
        present = [i for i in np.unique(ids) if i > 0]
        masks = np.stack([ids == i for i in present]) if present else np.zeros((0, height, width), bool)
        return Instances((height, width), pred_boxes=torch.from_numpy(mask_boxes(masks)),
                         scores=torch.tensor([0.5 + (i % 37) / 80 for i in present], dtype=torch.float32),
                         pred_classes=torch.tensor([int(classes[ids == i][0]) for i in present], dtype=torch.int64),
                         pred_mask_crops=CroppedMasks.from_masks(masks))

    def panoptic_result(self, instances, segmentation_image):
        return combine_semantic_and_instances(instances, segmentation_image, 0.5, 1, 0.5, [0])


def demo_mosaic(columns=4, rows=4, seed=7):
    """(encoded image, ground-truth instance map with ids unique in the mosaic, class of each id,
    per-scene (encoded image, instance map, offset))."""
    image = np.zeros((rows * CELL, columns * CELL, 3), np.uint8)
    instance_map = np.zeros(image.shape[:2], np.int64)
    class_of, scenes = {}, []
    for k in range(rows * columns):
        _, _, scene_ids, kinds = render_fruit_scene(np.random.default_rng([seed, k]), CELL, CELL)
        top, left = (k // columns) * CELL, (k % columns) * CELL
        offset = int(instance_map.max())
        ids = np.where(scene_ids > 0, scene_ids + offset, 0)
        for j, kind in enumerate(kinds, start=1):
            class_of[offset + j] = kind
        cell = np.zeros((CELL, CELL, 3), np.uint8)
        cell[..., 0] = ids
        cell[..., 1] = np.vectorize(lambda i: class_of.get(i, 0))(ids)
        cell[..., 2] = (np.arange(CELL)[None, :] * 3 + k * 17) % 256  # texture for the semantic path
        image[top:top + CELL, left:left + CELL] = cell
        instance_map[top:top + CELL, left:left + CELL] = ids
        scenes.append((cell, ids, (top, left)))
    assert instance_map.max() < 256
    return image, instance_map, class_of, scenes


def objects_cut(instance_map, windows, every_tile=False):
    """Ids that a tile border cuts (some tile, or every tile that overlaps them, sees only part)."""
    cut = set()
    for i in np.unique(instance_map[instance_map > 0]):
        rows, cols = np.nonzero(instance_map == i)
        partial = []
        for y0, x0, y1, x1 in windows:
            inside = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
            if inside.any():
                partial.append(not inside.all())
        if (all(partial) if every_tile else any(partial)):
            cut.add(int(i))
    return cut


def pasted(instances):
    crops = instance_mask_crops(instances)
    return [crops.paste(k) for k in range(len(instances))]


@pytest.fixture(scope="module")
def mosaic():
    return demo_mosaic()


def mask_iou(a, i, b, j):
    """IoU of mask i of CroppedMasks a and mask j of b (same image), over their extents only."""
    ra, rb = a.region(i), b.region(j)
    region = (min(ra[0], rb[0]), min(ra[1], rb[1]), max(ra[2], rb[2]), max(ra[3], rb[3]))
    ma, mb = a.paste(i, region), b.paste(j, region)
    return (ma & mb).sum() / max((ma | mb).sum(), 1)


@pytest.mark.parametrize("tile,every_tile_cuts", [(256, False), (64, True)])
def test_a_mosaic_tiled_gives_each_scene_its_own_instances_once(mosaic, tile, every_tile_cuts):
    image, instance_map, class_of, scenes = mosaic
    model = TileContentDetector()
    tiler = TiledSegmenter(model, tile, 0.5, "max")
    windows = tiler.windows(*image.shape[:2])
    out = tiler(image, return_scores=False)
    instances = out["instances"]
    got = instances.pred_mask_crops

    # The same model on each scene alone (the tile holds the scene), moved into the mosaic.
    crops, origins, classes = [], [], []
    for cell, ids, (top, left) in scenes:
        single = TiledSegmenter(model, CELL, 0.5, "max")(cell)["instances"]
        for k in range(len(single)):
            crops.append(single.pred_mask_crops.crop(k))
            origins.append(np.add(single.pred_mask_crops.region(k)[:2], (top, left)))
            classes.append(int(single.pred_classes[k]))
    alone = CroppedMasks(image.shape[:2], crops, origins)
    objects = [int(i) for i in np.unique(instance_map[instance_map > 0])]
    assert len(alone) == len(objects) > 60

    cut = objects_cut(instance_map, windows, every_tile=every_tile_cuts)
    assert len(cut) >= 10  # the case at hand: many objects are cut by tile borders
    # One instance per object, cut or not, with the same pixels and class as the scene alone.
    assert len(instances) == len(objects)
    got_boxes, alone_boxes = got.boxes(), alone.boxes()
    for j in range(len(alone)):
        near = np.flatnonzero((got_boxes[:, :2] < alone_boxes[j, 2:]).all(1) & (got_boxes[:, 2:] > alone_boxes[j, :2]).all(1))
        same = [k for k in near if mask_iou(got, k, alone, j) >= 0.9]
        assert len(same) == 1
        k = same[0]
        assert got.region(k) == alone.region(j) and np.array_equal(got.crop(k), alone.crop(j))
        assert instances.pred_classes[k] == classes[j]
    # Boxes in image coordinates; panoptic segments exactly the instances' pixels (they do not overlap).
    assert np.array_equal(instances.pred_boxes.numpy(), got_boxes)
    panoptic, segments = out["panoptic_seg"]
    things = [s for s in segments if s["isthing"]]
    assert len(things) == len(objects)
    for s in things:
        y0, x0, y1, x1 = got.region(s["instance_id"])
        assert (panoptic == s["id"]).sum() == got.crop(s["instance_id"]).sum()
        assert np.array_equal(panoptic[y0:y1, x0:x1].numpy() == s["id"], got.crop(s["instance_id"]))


def traced_peak(model, image):
    """Peak numpy (Python-heap) memory of tiled inference, in bytes, and its output."""
    tracemalloc.start()
    try:
        out = TiledSegmenter(model, 256, 0.5, "max")(image, return_scores=False)
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def test_stitching_and_fusion_hold_crops_only(mosaic):
    image = np.ascontiguousarray(np.tile(mosaic[0], (2, 1, 1))[:1024, :768])  # ~130 objects
    semantic_peak, _ = traced_peak(FakeModel(), image)
    peak, out = traced_peak(TileContentDetector(), image)
    n = len(out["instances"])
    full_mask = image.shape[0] * image.shape[1]  # bytes of one full-image bool mask
    crops = out["instances"].pred_mask_crops.nbytes
    boxes = out["instances"].pred_boxes.numpy()
    assert n > 100 and crops <= ((boxes[:, 2:] - boxes[:, :2]).prod(1).sum() + 16 * n)  # a box's pixels each
    # Beyond the semantic path: the panoptic output (int32), the crops and small temporaries;
    # a full-image mask per instance would be n x 0.75 MB.
    assert peak - semantic_peak < 4 * full_mask + crops + 2 * 2**20 < n * full_mask / 10


# ----------------------------------------------------------------------------- a real (tiny) model


@pytest.fixture(scope="module")
def panoptic(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiled_panoptic"), mask_on=True)


def test_one_tile_holding_the_image_is_exactly_whole_image_inference(panoptic):
    _, _, model = panoptic
    image = random_image(48, 64, seed=11)
    whole = whole_image_output(model, image)
    out = TiledSegmenter(model, 64, 0.5, "max")(image)
    a, b = whole["instances"], out["instances"]
    assert len(a) > 3 and not b.has("pred_masks")
    for field in ("pred_boxes", "scores", "pred_classes"):
        assert torch.equal(a.get(field), b.get(field)), field
    assert all(np.array_equal(m, w.numpy()) for m, w in zip(pasted(b), a.pred_masks))
    assert torch.equal(out["panoptic_seg"][0], whole["panoptic_seg"][0])
    assert out["panoptic_seg"][1] == whole["panoptic_seg"][1]
    assert instances_to_coco_results(b, "x") == instances_to_coco_results(a, "x")


def test_tiles_that_are_the_images_of_a_mosaic_give_each_image_its_own_instances(panoptic):
    # Without overlap no tile sees another's pixels: tiled inference must be each tile's own
    # inference, moved by the tile's offset (boxes, masks and the COCO RLE at image coordinates).
    _, _, model = panoptic
    images = [random_image(48, 64, seed=s) for s in range(4)]
    mosaic = np.concatenate([np.concatenate(images[:2], 1), np.concatenate(images[2:], 1)], 0)
    out = TiledSegmenter(model, (48, 64), 0.0, "max", batch_size=1)(mosaic)
    expected_masks, expected = [], []
    for k, image in enumerate(images):
        top, left = 48 * (k // 2), 64 * (k % 2)
        inst = whole_image_output(model, image)["instances"]
        for j in range(len(inst)):
            full = np.zeros(mosaic.shape[:2], bool)
            full[top:top + 48, left:left + 64] = inst.pred_masks[j].numpy()
            expected_masks.append(full)
            box = (inst.pred_boxes[j] + torch.tensor([left, top, left, top])).tolist()
            expected.append((float(inst.scores[j]), int(inst.pred_classes[j]), box))
    got = out["instances"]
    assert len(got) == len(expected) > 10
    order = sorted(range(len(expected)), key=lambda k: -expected[k][0])
    assert [(float(s), int(c)) for s, c in zip(got.scores, got.pred_classes)] == [expected[k][:2] for k in order]
    assert np.allclose(got.pred_boxes.numpy(), np.array([expected[k][2] for k in order]), atol=1e-4)
    assert all(np.array_equal(m, expected_masks[k]) for m, k in zip(pasted(got), order))
    results = instances_to_coco_results(got, "mosaic")
    full = Instances(mosaic.shape[:2], pred_boxes=got.pred_boxes, scores=got.scores, pred_classes=got.pred_classes,
                     pred_masks=torch.from_numpy(np.stack([expected_masks[k] for k in order])))
    assert [r["segmentation"] for r in results] == [r["segmentation"] for r in instances_to_coco_results(full, "m")]
