"""Read images and label files with errors that name the file and the problem."""
from __future__ import annotations

import contextlib
import logging
import os
import zlib
from typing import Iterator, Optional

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from segdet.errors import DataError
from segdet.utils.files import atomic_write

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
LABEL_FORMATS = ("gray", "blue", "rgb", "palette", "instance_ids")


def _check_exists(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise DataError(f"{what} not found: {path}")
    if not os.path.isfile(path):
        raise DataError(f"{what} is not a file: {path}")


@contextlib.contextmanager
def _opencv_silenced() -> Iterator[None]:
    """OpenCV prints its own warnings about a damaged file ("PNG input buffer is incomplete");
    segdet raises a DataError naming the file instead, and the user should see that one line."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk_problem(data: memoryview) -> Optional[str]:
    """What is wrong with a PNG file's chunks (cut short, a damaged chunk), or None.

    Checked before decoding: libpng prints its own complaint about such a file to stderr,
    around segdet's one-line error. The chunks are walked by their lengths and each one's CRC
    is compared (zlib.crc32: a small fraction of the decoding time).
    """
    size = len(data)
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= size:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = bytes(data[pos + 4:pos + 8]).decode("latin-1")
        end = pos + 12 + length
        if end > size:
            return f"cut short: chunk {kind} at byte {pos} needs {end} bytes, the file has {size}"
        if zlib.crc32(data[pos + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            return f"damaged: chunk {kind} at byte {pos} fails its CRC check"
        if kind == "IEND":
            return None
        pos = end
    return f"cut short: the file ends after {size} bytes, before its IEND chunk"


def _imread(path: str, what: str) -> np.ndarray:
    _check_exists(path, what)
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise DataError(f"{what} is empty (0 bytes): {path}")
    buffer = memoryview(data)
    if bytes(buffer[:len(_PNG_SIGNATURE)]) == _PNG_SIGNATURE:
        problem = png_chunk_problem(buffer)
        if problem:
            raise DataError(f"{what} {path} is corrupt ({problem})")
    # OpenCV decodes to the end of the file: a file cut short anywhere (its header readable)
    # is None here, not an image with missing rows.
    with _opencv_silenced():
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if array is None:
        raise DataError(f"{what} is corrupt or not an image format OpenCV can read: {path}")
    return array


def read_image(path: str) -> np.ndarray:
    """Read an image as RGB uint8, HxWx3.

    Gray images are replicated to three channels; an alpha channel is dropped;
    16-bit images are scaled to 8 bits (with a warning). Anything else is an error.
    """
    array = _imread(path, "image")
    if array.dtype == np.uint16:
        logger.warning("image %s is 16-bit; scaling it to 8 bits", path)
        array = (array.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        raise DataError(f"image {path} has pixel type {array.dtype}; expected 8- or 16-bit integers")
    if array.ndim == 2:
        return np.ascontiguousarray(np.repeat(array[:, :, None], 3, axis=2))
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise DataError(f"image {path} has shape {array.shape}; expected gray, RGB or RGBA")
    if array.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(array, 3, axis=2))
    if array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def image_size(path: str) -> tuple[int, int]:
    """(height, width) of an image file, reading only its header."""
    _check_exists(path, "image")
    try:
        with Image.open(path) as im:
            width, height = im.size
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DataError(f"image is corrupt or not a readable image: {path} ({e})") from None
    return height, width


def read_label_array(path: str, label_format: str) -> np.ndarray:
    """Read a label file's raw values, before they are turned into class ids.

    Returns HxW integers for "gray", "blue" (the blue channel), "palette" (the
    palette indices) and "instance_ids"; HxWx3 RGB for "rgb".
    """
    if label_format not in LABEL_FORMATS:
        raise DataError(f"unknown label format {label_format!r}; expected one of {list(LABEL_FORMATS)}")
    if label_format == "palette":
        _check_exists(path, "label file")
        try:
            with Image.open(path) as im:
                if im.mode != "P":
                    raise DataError(
                        f"label file {path} is not an indexed (palette) PNG (mode {im.mode}); "
                        "use label format 'gray', 'blue' or 'rgb'"
                    )
                return np.array(im)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise DataError(f"label file is corrupt or not a readable image: {path} ({e})") from None
    array = _imread(path, "label file")
    if array.dtype not in (np.uint8, np.uint16):
        raise DataError(f"label file {path} has pixel type {array.dtype}; expected 8- or 16-bit integers")
    if label_format in ("gray", "instance_ids"):
        if array.ndim == 3:
            if array.shape[2] == 4:
                array = array[:, :, :3]
            if not (np.array_equal(array[:, :, 0], array[:, :, 1]) and np.array_equal(array[:, :, 0], array[:, :, 2])):
                raise DataError(
                    f"label file {path} has color pixels but the label format is '{label_format}' "
                    "(one class id per pixel); use 'blue', 'rgb' or 'palette'"
                )
            array = array[:, :, 0]
        return array
    if array.ndim != 3 or array.shape[2] < 3:
        raise DataError(f"label file {path} has one channel but the label format '{label_format}' needs RGB")
    if label_format == "blue":
        return np.ascontiguousarray(array[:, :, 0])  # OpenCV stores BGR: channel 0 is blue
    return cv2.cvtColor(array[:, :, :3], cv2.COLOR_BGR2RGB)


def write_image(path: str, rgb: np.ndarray) -> None:
    """Write an RGB (or gray) uint8 or uint16 array, atomically; the format follows the extension."""
    array = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 and rgb.shape[2] == 3 else rgb

    def write(tmp: str) -> None:
        if not cv2.imwrite(tmp, array):
            raise DataError(f"cannot write image {path} (is '{os.path.splitext(path)[1]}' an image extension?)")

    atomic_write(path, write)
