"""SegdetDatasetMapper: detectron2's model input, labels and instance masks aligned after flips and crops."""
import numpy as np
import pycocotools.mask as mask_util
import pytest
from PIL import Image

from tests.d2.conftest import SKIP_REASON

pytest.importorskip("detectron2._C", reason=SKIP_REASON)

from detectron2.data import DatasetCatalog as D2DatasetCatalog  # noqa: E402
from detectron2.data import transforms as T  # noqa: E402
from detectron2.structures import BitMasks, Boxes  # noqa: E402

from segdet.d2 import SegdetDatasetMapper, segdet_metadata  # noqa: E402
from segdet.d2.mapper import SegdetAugmentation  # noqa: E402
from segdet.data.mapper import DatasetMapper  # noqa: E402
from segdet.data.transforms.augmentation import RandomFlip  # noqa: E402

X0, Y0, CROP_W, CROP_H = 5, 7, 48, 40
WEIGHTS = [0.5, 2.0, 3.0, 4.0, 1.0]


def _geometry(array):
    """What the augmentations below do, written with numpy: both flips, then the crop."""
    return array[::-1, ::-1][Y0:Y0 + CROP_H, X0:X0 + CROP_W]


def _mapper(cfg, is_train):
    metadata = segdet_metadata(cfg)
    core = DatasetMapper(is_train, [], metadata, metadata.ignore_class_ids, 255, WEIGHTS, instances_on=True)
    # detectron2's transforms and one of segdet's augmentations, in one AugmentationList.
    augmentations = [T.HFlipTransform(64), SegdetAugmentation(RandomFlip("vertical", prob=1.0)),
                     T.CropTransform(X0, Y0, CROP_W, CROP_H)]
    return SegdetDatasetMapper(core, augmentations)


def _annotation_mask(annotation, height, width):
    segmentation = annotation["segmentation"]
    rles = mask_util.frPyObjects(segmentation, height, width) if isinstance(segmentation, list) else [segmentation]
    if isinstance(segmentation, dict) and isinstance(segmentation["counts"], str):
        rles = [{"size": segmentation["size"], "counts": segmentation["counts"].encode()}]
    return mask_util.decode(mask_util.merge(rles)).astype(bool)


def test_training_output_is_detectron2s_input_with_labels_masks_and_weights_aligned(tiny_cfg_factory):
    cfg = tiny_cfg_factory()
    d = next(x for x in D2DatasetCatalog.get("tiny_train") if len(x["annotations"]) >= 2)
    out = _mapper(cfg, is_train=True)(d)

    raw_image = np.asarray(Image.open(d["file_name"]).convert("RGB"))
    raw_labels = np.asarray(Image.open(d["sem_seg_file_name"])).astype(np.int64)
    assert (out["height"], out["width"]) == (64, 64)
    assert out["image"].dtype.is_floating_point is False and tuple(out["image"].shape) == (3, CROP_H, CROP_W)
    np.testing.assert_array_equal(out["image"].numpy().transpose(1, 2, 0), _geometry(raw_image))
    expected_sem = _geometry(raw_labels).copy()
    expected_sem[expected_sem == 4] = 255  # border: the ignore class
    np.testing.assert_array_equal(out["sem_seg"].numpy(), expected_sem)
    expected_weight = np.where(expected_sem == 255, 0.0, np.asarray(WEIGHTS)[np.minimum(expected_sem, 4)])
    np.testing.assert_allclose(out["weight"].numpy(), expected_weight)

    instances = out["instances"]
    assert instances.image_size == (CROP_H, CROP_W)
    assert isinstance(instances.gt_boxes, Boxes) and isinstance(instances.gt_masks, BitMasks)
    expected = []
    for a in d["annotations"]:
        mask = _geometry(_annotation_mask(a, 64, 64))
        if mask.any():
            expected.append((a["category_id"], mask))
    assert len(instances) == len(expected) >= 2
    masks = instances.gt_masks.tensor.numpy()
    for k, (thing_index, mask) in enumerate(expected):
        assert int(instances.gt_classes[k]) == thing_index  # detectron2's thing index, as in its catalog
        np.testing.assert_array_equal(masks[k], mask)
        ys, xs = np.nonzero(mask)
        np.testing.assert_allclose(instances.gt_boxes.tensor[k].numpy(), [xs.min(), ys.min(), xs.max() + 1,
                                                                          ys.max() + 1])
        # The instance's pixels are its class (thing index + 1 here) in sem_seg, or ignore (border).
        assert set(np.unique(out["sem_seg"].numpy()[mask]).tolist()) <= {thing_index + 1, 255}


def test_test_output_keeps_the_dict_in_detectron2s_convention_and_reads_no_labels(tiny_cfg_factory):
    cfg = tiny_cfg_factory()
    d = D2DatasetCatalog.get("tiny_val")[0]
    out = SegdetDatasetMapper.from_config(cfg, is_train=False, metadata=segdet_metadata(cfg))(d)
    assert "sem_seg" not in out and "instances" not in out and "weight" not in out
    assert out["annotations"] == d["annotations"] and out["sem_seg_file_name"] == d["sem_seg_file_name"]
    assert tuple(out["image"].shape) == (3, 64, 64)
