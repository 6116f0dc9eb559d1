"""The layout of a prediction folder (what `segdet.inference.predict_files` writes): for each
image, `<stem>.png` (the segmentation_image) and next to it `<stem>_confidence.*` and
`<stem>_overlay.jpg`. Whoever reads such a folder (evaluation, pictures) finds the
segmentation files here, so that the side files never pass for predictions."""
from __future__ import annotations

from segdet.errors import DataError
from segdet.utils.files import files_by_stem
from segdet.utils.image_io import IMAGE_EXTENSIONS

# Suffixes of the files written next to each segmentation_image <stem>.png.
SIDE_FILE_SUFFIXES = ("_confidence", "_overlay")


def prediction_files(folder: str) -> dict[str, str]:
    """stem -> segmentation_image file of a prediction folder: its image files without the
    confidence and overlay pictures that `predict_files` writes next to them. A folder without
    any is a DataError naming it."""
    files = files_by_stem(folder, IMAGE_EXTENSIONS, "prediction")
    found = {stem: path for stem, path in files.items()
             if not any(stem.endswith(suffix) and stem[: -len(suffix)] in files for suffix in SIDE_FILE_SUFFIXES)}
    if not found:
        raise DataError(f"prediction folder {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return found
