"""Rotation about the image center as an fvcore Transform (OpenCV warpAffine)."""
from __future__ import annotations

import cv2
import numpy as np
from fvcore.transforms.transform import NoOpTransform, Transform

# Pixel types cv2.warpAffine handles; others go through float64, which is exact
# for nearest-neighbour sampling of integer labels.
_CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


class RotationTransform(Transform):
    """Rotate by `angle` degrees about the image center, keeping the image size.

    Sign convention (OpenCV's): a positive angle rotates counter-clockwise as the
    image is displayed (row 0 at the top), like ``np.rot90(img, k=1)`` for 90.

    Images are sampled bilinearly and the area the rotated image no longer covers
    is `pad_value`; segmentations are sampled with nearest neighbour and the
    uncovered area is `seg_pad_value` (the ignore value, never a class).
    """

    def __init__(self, h: int, w: int, angle: float, pad_value: float = 0, seg_pad_value: int = 255):
        """
        Args:
            h, w: size of the images this transform applies to.
            angle: degrees, counter-clockwise.
            pad_value: fill of uncovered image pixels.
            seg_pad_value: fill of uncovered segmentation pixels.
        """
        super().__init__()
        self._set_attributes(locals())
        # Pixel centers sit on integer indices, so the center of the pixel grid is
        # ((w-1)/2, (h-1)/2); continuous coordinates (fvcore's, in [0, W]) rotate
        # about (w/2, h/2). Both describe the same geometric rotation.
        self._pixel_matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
        self._coord_matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)

    def _warp(self, img: np.ndarray, interp: int, fill: float) -> np.ndarray:
        if img.shape[:2] != (self.h, self.w):
            raise ValueError(f"RotationTransform for {self.h}x{self.w} images got an array of shape {img.shape}")
        if self.angle % 360 == 0:
            return img
        dtype = img.dtype
        src = img if dtype in _CV2_DTYPES else img.astype(np.float64)
        out = cv2.warpAffine(
            np.ascontiguousarray(src),
            self._pixel_matrix,
            (self.w, self.h),
            flags=interp,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(fill, fill, fill, fill),
        )
        if out.ndim == 2 and img.ndim == 3:  # OpenCV drops a trailing channel axis of size 1
            out = out[:, :, None]
        return out.astype(dtype, copy=False)

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        return self._warp(img, cv2.INTER_LINEAR, self.pad_value)

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return self._warp(segmentation, cv2.INTER_NEAREST, self.seg_pad_value)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        coords = np.asarray(coords, dtype=np.float64)
        if coords.size == 0 or self.angle % 360 == 0:
            return coords
        return coords @ self._coord_matrix[:, :2].T + self._coord_matrix[:, 2]

    def inverse(self) -> Transform:
        if self.angle % 360 == 0:
            return NoOpTransform()
        return RotationTransform(self.h, self.w, -self.angle, self.pad_value, self.seg_pad_value)
