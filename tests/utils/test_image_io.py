"""Damaged PNG files: found before decoding, one DataError naming the file, and nothing printed
by the C libraries."""
import numpy as np
import pytest
from PIL import Image

from segdet.errors import DataError
from segdet.utils.image_io import read_image, read_label_array


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(path)
    return path


def test_a_png_cut_short_or_with_a_damaged_chunk_is_one_clear_error(png, capfd):
    data = png.read_bytes()
    expected = np.array(Image.open(png))
    assert np.array_equal(read_image(str(png)), expected)
    png.write_bytes(data[:-12])  # no IEND chunk: libpng refuses it, printing its own complaint
    with pytest.raises(DataError, match=f"^image {png} is corrupt \\(cut short: the file ends after "
                                        f"{len(data) - 12} bytes, before its IEND chunk\\)$"):
        read_image(str(png))
    damaged = bytearray(data)
    damaged[60] ^= 0xFF  # inside the IDAT chunk that follows IHDR (bytes 33..)
    png.write_bytes(bytes(damaged))
    with pytest.raises(DataError, match=f"^label file {png} is corrupt \\(damaged: chunk IDAT at byte 33 fails "
                                        "its CRC check\\)$"):
        read_label_array(str(png), "rgb")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
