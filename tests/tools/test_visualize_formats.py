"""tools/visualize.py dataset draws each label format's ground truth: every class of the scene
shows its color, blended over the (uniform gray) image, on about as many pixels as it covers."""
import cv2
import numpy as np
import pytest
import yaml

from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.visualization.folders import picture_path
from segdet.visualization.primitives import display_scale
from tests.data.format_files import GRAY, H, W, WRITERS
from tests.tools.tool_loader import tool_main as run_tool

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def tool_main(*args):
    return run_tool("visualize", *args)


def pixels_of_color(picture: np.ndarray, color) -> int:
    return int((np.abs(picture.astype(int) - np.asarray(color)).max(axis=2) <= 1).sum())


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_dataset_pictures_show_each_class(tmp_path, fmt):
    case = WRITERS[fmt](tmp_path / "data")
    entry_name = f"vis_{fmt}"
    name = f"{entry_name}_{case.names[-1]}" if case.names else entry_name
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({"DATASETS": {"CUSTOM": {entry_name: case.entry}}}))
    try:
        assert tool_main("dataset", "--dataset", name, "--config-file", config, "--output", tmp_path / "vis") == 0
        meta = MetadataCatalog.get(name)
        dicts = DatasetCatalog.get(name)
    finally:
        for n in [f"{entry_name}_{s}" for s in case.names] or [entry_name]:
            DatasetCatalog.remove(n)
            MetadataCatalog.remove(n)
    scale = display_scale(H, W) ** 2
    for d in dicts:
        picture = cv2.cvtColor(cv2.imread(picture_path(str(tmp_path / "vis"), d["image_id"])), cv2.COLOR_BGR2RGB)
        expected = case.expected[d["image_id"]]
        for class_id in np.unique(expected):
            if class_id in meta.ignore_class_ids:
                continue
            # alpha 0.5 over the gray image, as draw_ground_truth blends (cv2.addWeighted rounds).
            blended = [int(np.floor(0.5 * GRAY + 0.5 * v + 0.5)) for v in meta.class_colors[class_id]]
            area = int((expected == class_id).sum()) * scale
            assert pixels_of_color(picture, blended) >= 0.6 * area, (d["image_id"], meta.class_names[class_id])
