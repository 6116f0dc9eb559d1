"""`labelme`: LabelMe JSON files, rasterized as LabelMe's export does (checked on hand-drawn masks)."""
import json
import os

import numpy as np
import pytest

from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.formats.labelme import Shape, labelme_classes, load_labelme, register_labelme, shape_mask
from segdet.data.label_codec import LabelCodec
from segdet.errors import DataError
from segdet.structures.masks import segmentation_to_mask
from tests.data.format_files import CATS, H, W, box_mask, write_image, write_labelme

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def art(text: str) -> np.ndarray:
    """A mask drawn by hand: '#' in, '.' out, one text line per row."""
    return np.array([[c == "#" for c in line.strip()] for line in text.strip().splitlines()])


# Pixel centres sit at integer coordinates; a pixel on the outline is in the shape.
TRIANGLE = art("""
    ........
    .######.
    ..#####.
    ...####.
    ....###.
    .....##.
    ......#.
    ........
""")  # polygon (1, 1), (6, 1), (6, 6): row y holds columns y..6
RECTANGLE = art("""
    ............
    ............
    ............
    ............
    ............
    ...#######..
    ...#######..
    ...#######..
    ...#######..
    ............
""")  # corners (9, 8) and (3, 5), given bottom right first
CIRCLE = art("""
    ..........
    ..........
    ....###...
    ...#####..
    ..#######.
    ..#######.
    ..#######.
    ...#####..
    ....###...
    ..........
""")  # centre (5, 5), a point on it (5, 8): radius 3


@pytest.mark.parametrize("shape, expected", [
    (Shape("x", [(1, 1), (6, 1), (6, 6)], "polygon", None), TRIANGLE),
    (Shape("x", [(9, 8), (3, 5)], "rectangle", None), RECTANGLE),
    (Shape("x", [(5, 5), (5, 8)], "circle", None), CIRCLE),
])
def test_shapes_match_hand_drawn_masks(shape, expected):
    np.testing.assert_array_equal(shape_mask(shape, *expected.shape), expected)


def test_lines_are_10_pixels_wide_and_points_discs_of_radius_5():
    # Horizontal then vertical, 10 px wide: rows y-4..y+5 around y = 12, columns x-4..x+5 around x = 12;
    # the ends are cut square at the points.
    expected = np.zeros((24, 24), bool)
    expected[8:18, 2:13] = True
    expected[12:23, 8:18] = True
    got = shape_mask(Shape("x", [(2, 12), (12, 12), (12, 22)], "linestrip", None), 24, 24)
    np.testing.assert_array_equal(got, expected)
    yy, xx = np.mgrid[:24, :24]
    disc = (xx - 12) ** 2 + (yy - 11) ** 2 <= 5.5 ** 2  # the pixel centres within 5.5 of the point
    np.testing.assert_array_equal(shape_mask(Shape("x", [(12, 11)], "point", None), 24, 24), disc)


def test_folder_loads_labels_instances_and_the_embedded_image(tmp_path):
    case = write_labelme(tmp_path)
    classes = labelme_classes(case.entry["FOLDER"], thing_classes=["cat"])
    assert classes.metadata.class_names == case.class_names and classes.metadata.thing_class_ids == [1]
    dicts = load_labelme(case.entry["FOLDER"], classes)
    assert [d["image_id"] for d in dicts] == ["a", "b"]
    assert dicts[0]["file_name"] == str(tmp_path / "labels" / ".." / "images" / "a.png")
    # b has no image file: its imageData was written into the cache.
    assert dicts[1]["file_name"].startswith(str(tmp_path / "labels" / ".segdet_cache"))
    assert dicts[1]["file_name"].endswith(".png")
    for d in dicts:
        np.testing.assert_array_equal(LabelCodec(classes.metadata).read(d["sem_seg_file_name"]),
                                      case.expected[d["image_id"]])
        masks = [segmentation_to_mask(a["segmentation"], H, W) for a in d["annotations"]]
        assert [a["category_id"] for a in d["annotations"]] == [1] * len(CATS[d["image_id"]])
        for mask, box in zip(masks, CATS[d["image_id"]]):
            np.testing.assert_array_equal(mask, box_mask(box))


def _file(tmp_path, shapes, **extra):
    write_image(tmp_path / "x.png")
    data = {"shapes": shapes, "imagePath": "x.png", "imageData": None, **extra}
    (tmp_path / "x.json").write_text(json.dumps(data))
    return str(tmp_path)


def _poly(label, box, group_id=None):
    top, bottom, left, right = box
    return {"label": label, "points": [[left, top], [right, top], [right, bottom], [left, bottom]],
            "shape_type": "polygon", "group_id": group_id}


def test_group_id_joins_parts_and_later_shapes_cover_earlier_ones(tmp_path):
    folder = _file(tmp_path, [
        _poly("car", (0, 9, 0, 9), group_id=1), _poly("car", (0, 9, 30, 39), group_id=1),  # one car, two parts
        _poly("car", (20, 29, 0, 9)),                       # a second car
        _poly("tree", (5, 24, 5, 14)),                      # drawn over parts of both cars
    ])
    classes = labelme_classes(folder, thing_classes=["car"])
    (d,) = load_labelme(folder, classes)
    tree = box_mask((5, 24, 5, 14))
    first = (box_mask((0, 9, 0, 9)) | box_mask((0, 9, 30, 39))) & ~tree
    second = box_mask((20, 29, 0, 9)) & ~tree
    masks = [segmentation_to_mask(a["segmentation"], H, W) for a in d["annotations"]]
    assert len(masks) == 2
    np.testing.assert_array_equal(masks[0], first)
    np.testing.assert_array_equal(masks[1], second)
    ids = LabelCodec(classes.metadata).read(d["sem_seg_file_name"])
    assert (ids[tree] == 2).all() and (ids[first | second] == 1).all() and (ids[~(tree | first | second)] == 0).all()


def test_classes_file_and_label_map(tmp_path):
    folder = _file(tmp_path, [_poly("Car", (0, 9, 0, 9)), _poly("truck", (20, 29, 0, 9)),
                              _poly("blur", (40, 49, 0, 9))])
    classes_file = tmp_path / "classes.yaml"
    classes_file.write_text("classes:\n  - {id: 0, name: background}\n  - {id: 1, name: vehicle, thing: true}\n"
                            "  - {id: 2, name: unsure, ignore: true}\nlabel_map: {Car: vehicle, truck: vehicle}\n")
    name = "test_labelme_classes_file"
    try:
        # The declaration's label_map adds to the classes file's.
        meta = register_labelme(name, folder, classes_file=str(classes_file), label_map={"blur": 2})
        (d,) = DatasetCatalog.get(name)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    expected = np.zeros((H, W), np.uint8)
    expected[box_mask((0, 9, 0, 9)) | box_mask((20, 29, 0, 9))] = 1
    expected[box_mask((40, 49, 0, 9))] = 2
    np.testing.assert_array_equal(LabelCodec(meta).read(d["sem_seg_file_name"]), expected)
    assert [a["category_id"] for a in d["annotations"]] == [1, 1]


@pytest.mark.parametrize("shape, problem", [
    ({"label": "x", "points": [[1, 1], [2, 2]], "shape_type": "polygon"}, r"\('x'\): a polygon needs at least 3"),
    ({"label": "x", "points": [[1, 1]], "shape_type": "rectangle"}, "a rectangle needs 2 point"),
    ({"label": "x", "points": [[1, 1], [2, 2]], "shape_type": "mask"}, "shape_type 'mask'"),
    ({"label": "x", "points": [[1, "a"]], "shape_type": "point"}, r"'points' must be a list of \[x, y\]"),
    ({"points": [[1, 1]], "shape_type": "point"}, "has no 'label'"),
])
def test_bad_shapes_are_named(tmp_path, shape, problem):
    folder = _file(tmp_path, [shape])
    with pytest.raises(DataError, match=r"x\.json: shape 0 .*" + problem):
        labelme_classes(folder)


def test_bad_files_are_named(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DataError, match=r"x\.json cannot be parsed"):
        labelme_classes(str(tmp_path))
    (tmp_path / "x.json").write_text(json.dumps({"imagePath": "x.png"}))
    with pytest.raises(DataError, match=r"x\.json has no 'shapes' list"):
        labelme_classes(str(tmp_path))
    folder = _file(tmp_path, [_poly("car", (0, 9, 0, 9))], imagePath="gone.png")
    with pytest.raises(DataError, match=r"x\.json: its image 'gone.png' is not found and no imageData"):
        load_labelme(folder, labelme_classes(folder))
    folder = _file(tmp_path, [_poly("car", (0, 9, 0, 9))], imageHeight=10, imageWidth=W)
    with pytest.raises(DataError, match=r"x\.json says its image is 64x10 \(WxH\) but .*x\.png is 64x64"):
        load_labelme(folder, labelme_classes(folder))
    classes_file = tmp_path / "classes.json"
    classes_file.write_text(json.dumps({"classes": [{"id": 0, "name": "background"}]}))
    folder = _file(tmp_path, [_poly("car", (0, 9, 0, 9))])
    with pytest.raises(DataError, match=r"x\.json: shape 0: label 'car' is not a class"):
        load_labelme(folder, labelme_classes(folder, classes_file=str(classes_file)))
    os.remove(tmp_path / "x.json")
    with pytest.raises(DataError, match="no LabelMe files"):
        load_labelme(folder, labelme_classes(folder, classes_file=str(classes_file)))


def test_windows_image_path(tmp_path):
    (tmp_path / "labels").mkdir()
    write_image(tmp_path / "images" / "x.png")
    data = {"shapes": [_poly("car", (0, 9, 0, 9))], "imagePath": "..\\images\\x.png", "imageData": None}
    (tmp_path / "labels" / "x.json").write_text(json.dumps(data))
    folder = str(tmp_path / "labels")
    (d,) = load_labelme(folder, labelme_classes(folder))
    assert os.path.samefile(d["file_name"], tmp_path / "images" / "x.png")
