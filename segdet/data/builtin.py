"""Datasets known by name without any set-up, found under $SEGDET_DATASETS (default ./datasets):
demo_fruit_{train,val,test} (generated on first use), camvid_{train,val,test}, pennfudan_{train,val},
cityscapes_fine_{train,val} (in cityscapes/), ade20k_{train,val} (in ADEChallengeData2016/)."""
from __future__ import annotations

import os

from segdet.data.catalog import register_dataset
from segdet.data.demo import register_demo_datasets
from segdet.data.formats.ade20k import ade20k_metadata, register_ade20k
from segdet.data.formats.camvid import register_camvid
from segdet.data.formats.cityscapes import cityscapes_metadata, register_cityscapes
from segdet.data.formats.instance_masks import instance_masks_metadata, register_pennfudan
from segdet.data.palettes import camvid_metadata
from segdet.errors import DataError

# The fixed Penn-Fudan split (100 train / 20 val images), shipped with segdet.
PENNFUDAN_SPLIT_FILE = os.path.join(os.path.dirname(__file__), "builtin_splits", "pennfudan.json")


def datasets_root() -> str:
    return os.environ.get("SEGDET_DATASETS", "datasets")


def _register_missing(names: list[str], metadata_fn, folder: str, what: str) -> None:
    """Register names whose loading explains where the data was expected."""
    def missing() -> list[dict]:
        raise DataError(f"{what} not found at {os.path.abspath(folder)}; put it there or set SEGDET_DATASETS "
                        "to the folder that holds it (see datasets/README.md)")

    for name in names:
        register_dataset(name, missing, metadata_fn())


def register_builtin_datasets(root: str | None = None) -> None:
    """(Re-)register the built-in datasets under `root` (default $SEGDET_DATASETS or ./datasets)."""
    root = root or datasets_root()
    register_demo_datasets(os.path.join(root, "demo_fruit"))
    camvid = os.path.join(root, "camvid")
    if os.path.isdir(camvid):
        register_camvid(camvid)
    else:
        _register_missing(["camvid_train", "camvid_val", "camvid_test"], camvid_metadata, camvid, "CamVid")
    pennfudan = os.path.join(root, "pennfudan")
    if os.path.isdir(pennfudan):
        register_pennfudan(pennfudan, PENNFUDAN_SPLIT_FILE)
    else:
        _register_missing(["pennfudan_train", "pennfudan_val"], instance_masks_metadata, pennfudan, "Penn-Fudan")
    cityscapes = os.path.join(root, "cityscapes")
    if os.path.isdir(cityscapes):
        register_cityscapes(cityscapes)
    else:
        _register_missing(["cityscapes_fine_train", "cityscapes_fine_val"], cityscapes_metadata, cityscapes,
                          "Cityscapes")
    ade20k = os.path.join(root, "ADEChallengeData2016")
    if os.path.isdir(ade20k):
        register_ade20k(ade20k)
    else:
        _register_missing(["ade20k_train", "ade20k_val"], ade20k_metadata, ade20k, "ADE20K (ADEChallengeData2016)")
