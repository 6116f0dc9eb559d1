"""Instances: the instance set of one image, from the mapper through the model to the writers,
the evaluators and the pictures (detectron2's `Instances`, with its field names).

    Ground truth (the mapper, in training):
        gt_boxes    (N, 4) float32, XYXY in pixels of the network input
        gt_classes  (N,) int64 class ids (dataset-wide ids, not thing indices)
        gt_masks    (N, H, W) uint8 0/1
    Predictions (the model, at the original image size):
        pred_boxes  (N, 4) float32 XYXY
        scores      (N,) float32
        pred_classes (N,) int64 class ids
        pred_masks  (N, H, W) bool (whole-image inference)
        pred_mask_crops  a `CroppedMasks` instead of `pred_masks` (tiled inference): each mask
                    cut to its extent, never a full-image mask; read either with
                    `structures.cropped_masks.instance_mask_crops`

Fields are torch tensors, numpy arrays or CroppedMasks, all of length N. The module imports
neither torch nor numpy-heavy code, so the pictures can use it without loading torch.
"""
from __future__ import annotations

from typing import Any, Iterator


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "detach") and hasattr(value, "device")


class Instances:
    """Fields of equal length describing the instances of one image of size `image_size` (H, W)."""

    def __init__(self, image_size: tuple[int, int], **fields: Any):
        self._image_size = (int(image_size[0]), int(image_size[1]))
        self._fields: dict[str, Any] = {}
        for name, value in fields.items():
            self.set(name, value)

    @property
    def image_size(self) -> tuple[int, int]:
        return self._image_size

    def set(self, name: str, value: Any) -> None:
        if self._fields and len(value) != len(self):
            raise ValueError(f"Instances: field '{name}' has {len(value)} entries, the others {len(self)}")
        self._fields[name] = value

    def has(self, name: str) -> bool:
        return name in self._fields

    def get(self, name: str, default: Any = None) -> Any:
        return self._fields.get(name, default)

    def fields(self) -> dict[str, Any]:
        return dict(self._fields)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails; private names never reach the fields (pickling).
        if name.startswith("_") or name not in self.__dict__.get("_fields", {}):
            raise AttributeError(f"Instances has no field '{name}'; fields: {list(self.__dict__.get('_fields', {}))}")
        return self._fields[name]

    def __len__(self) -> int:
        for value in self._fields.values():
            return len(value)
        return 0

    def __iter__(self) -> Iterator:
        raise TypeError("Instances is not iterable; index it, or read its fields")

    def __getitem__(self, index: Any) -> "Instances":
        """The instances selected by an int, a slice, an index array or a boolean mask."""
        if isinstance(index, int):
            if not -len(self) <= index < len(self):
                raise IndexError(f"Instances index {index} out of range for {len(self)} instances")
            index = slice(index, None if index == -1 else index + 1)
        return Instances(self._image_size, **{k: v[index] for k, v in self._fields.items()})

    def to(self, *args: Any, **kwargs: Any) -> "Instances":
        """Tensor fields moved with `.to(...)` (numpy fields are kept)."""
        return Instances(self._image_size, **{k: v.to(*args, **kwargs) if _is_tensor(v) else v
                                              for k, v in self._fields.items()})

    def numpy(self) -> "Instances":
        """The same instances with every tensor field a numpy array (CroppedMasks are kept)."""
        import numpy as np

        def convert(v: Any) -> Any:
            if _is_tensor(v):
                return v.detach().cpu().numpy()
            return v.numpy() if hasattr(v, "numpy") else np.asarray(v)

        return Instances(self._image_size, **{k: convert(v) for k, v in self._fields.items()})

    def __repr__(self) -> str:
        return f"Instances(num_instances={len(self)}, image_size={self._image_size}, fields={list(self._fields)})"
