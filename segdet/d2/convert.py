"""Conversions at the boundary between detectron2 and segdet, and nowhere else.

detectron2 numbers the thing classes 0..K-1 (its "contiguous ids": `thing_classes`, the
`category_id` of the annotations in its catalog, `gt_classes`, `pred_classes`, thing segments
of `panoptic_seg`) and keeps boxes and masks in its own structures (`Boxes`, `BitMasks`).
segdet uses dataset-wide class ids everywhere and plain tensors. Stuff classes need no
conversion: detectron2's stuff ids are the semantic channels, which are segdet's class ids.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from detectron2.structures import BitMasks, Boxes
from detectron2.structures import Instances as D2Instances

from segdet.errors import DataError
from segdet.structures.instances import Instances


class ThingIds:
    """Thing class ids <-> detectron2's thing indices, for one set of thing classes."""

    def __init__(self, thing_class_ids: Sequence[int]):
        self.class_ids = [int(c) for c in thing_class_ids]
        self._index = {c: i for i, c in enumerate(self.class_ids)}
        self._class_table = torch.tensor(self.class_ids, dtype=torch.int64)
        self._index_table = torch.full((256,), -1, dtype=torch.int64)
        if self.class_ids:
            self._index_table[self._class_table] = torch.arange(len(self.class_ids))

    def dataset_id_to_contiguous_id(self) -> dict[int, int]:
        """detectron2's `thing_dataset_id_to_contiguous_id`: class id -> thing index."""
        return dict(self._index)

    def index(self, class_id: int, where: str = "annotation") -> int:
        if int(class_id) not in self._index:
            raise DataError(f"{where}: category_id {class_id} is not a thing class (thing classes: {self.class_ids})")
        return self._index[int(class_id)]

    def class_id(self, index: int, where: str = "annotation") -> int:
        if not 0 <= int(index) < len(self.class_ids):
            raise DataError(f"{where}: thing index {index} is not one of 0..{len(self.class_ids) - 1}")
        return self.class_ids[int(index)]

    def class_ids_of(self, indices: torch.Tensor) -> torch.Tensor:
        return self._class_table.to(indices.device)[indices.long()]

    def indices_of(self, class_ids: torch.Tensor) -> torch.Tensor:
        return self._index_table.to(class_ids.device)[class_ids.long()]

    def annotations_with_indices(self, annotations: Iterable[dict], where: str = "image") -> list[dict]:
        """Copies of dataset-dict annotations with `category_id` a thing index (detectron2's catalog)."""
        return [{**a, "category_id": self.index(a["category_id"], where)} for a in annotations]

    def annotations_with_class_ids(self, annotations: Iterable[dict], where: str = "image") -> list[dict]:
        """Copies of annotations from detectron2's catalog with `category_id` a class id (segdet's)."""
        return [{**a, "category_id": self.class_id(a["category_id"], where)} for a in annotations]

    def segments_with_class_ids(self, segments_info: Iterable[dict]) -> list[dict]:
        """`panoptic_seg` segments of detectron2's convention (thing segments numbered by thing index,
        `isthing` set) with `category_id` a class id."""
        out = []
        for segment in segments_info:
            segment = dict(segment)
            if segment.get("isthing"):
                segment["category_id"] = self.class_id(segment["category_id"], "panoptic segment")
            out.append(segment)
        return out


def dict_with_class_ids(dataset_dict: dict, things: ThingIds) -> dict:
    """A shallow copy of a dataset dict of detectron2's catalog whose annotations use class ids."""
    if not dataset_dict.get("annotations"):
        return dataset_dict
    where = f"image {dataset_dict.get('file_name', '?')}"
    return {**dataset_dict, "annotations": things.annotations_with_class_ids(dataset_dict["annotations"], where)}


def to_detectron2_instances(instances: Instances, things: ThingIds) -> D2Instances:
    """The mapper's ground truth (segdet: gt_classes class ids) as detectron2's Instances
    (gt_boxes Boxes, gt_classes thing indices, gt_masks BitMasks)."""
    return D2Instances(
        instances.image_size,
        gt_boxes=Boxes(instances.gt_boxes.to(torch.float32).reshape(-1, 4)),
        gt_classes=things.indices_of(instances.gt_classes),
        gt_masks=BitMasks(instances.gt_masks.to(torch.bool)),
    )


def to_segdet_instances(instances: D2Instances, things: ThingIds) -> Instances:
    """Predicted detectron2 Instances as segdet's (pred_boxes tensor, pred_classes class ids)."""
    fields = {
        "pred_boxes": instances.pred_boxes.tensor,
        "scores": instances.scores,
        "pred_classes": things.class_ids_of(instances.pred_classes),
    }
    if instances.has("pred_masks"):
        fields["pred_masks"] = instances.pred_masks
    return Instances(instances.image_size, **fields)


def to_segdet_output(output: dict, things: ThingIds) -> dict:
    """An output dict of segdet's meta-architectures inside detectron2 as segdet's output dict:
    instances and panoptic segments with class ids (what segdet's writers and evaluators read)."""
    out = dict(output)
    if "instances" in out:
        out["instances"] = to_segdet_instances(out["instances"], things)
    if "panoptic_seg" in out:
        seg, segments = out["panoptic_seg"]
        out["panoptic_seg"] = (seg, things.segments_with_class_ids(segments))
    return out

