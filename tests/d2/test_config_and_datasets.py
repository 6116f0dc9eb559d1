"""segdet's keys on detectron2's config, the model-zoo base, and segdet's datasets in detectron2's catalogs."""
import subprocess
import sys

import pytest

from tests.d2.conftest import REPO, SKIP_REASON

pytest.importorskip("detectron2._C", reason=SKIP_REASON)

from detectron2.data import DatasetCatalog as D2DatasetCatalog  # noqa: E402
from detectron2.data import MetadataCatalog as D2MetadataCatalog  # noqa: E402

from segdet.config.config import get_cfg as segdet_get_cfg  # noqa: E402
from segdet.d2 import get_cfg, load_config  # noqa: E402
from segdet.d2.config import SEGDET_KEYS  # noqa: E402
from segdet.data.catalog import DatasetCatalog, MetadataCatalog  # noqa: E402
from segdet.errors import ConfigError  # noqa: E402


def _get(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def test_segdet_keys_have_segdet_defaults_and_detectron2_keep_theirs():
    cfg, standalone = get_cfg(), segdet_get_cfg()
    for key in SEGDET_KEYS:
        assert _get(cfg, key) == _get(standalone, key), key
    assert cfg.DATASETS.CUSTOM.is_new_allowed()
    # detectron2's own defaults are untouched.
    assert cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN" and cfg.INPUT.FORMAT == "BGR"


def test_configs_inherit_detectron2s_panoptic_fpn_base_from_the_installed_model_zoo():
    cfg = load_config(f"{REPO}/configs/detectron2/Base-Segdet-PanopticFPN.yaml")
    # From detectron2's Base-RCNN-FPN.yaml and Base-Panoptic-FPN.yaml (not in segdet's files).
    assert cfg.MODEL.RESNETS.OUT_FEATURES == ["res2", "res3", "res4", "res5"]
    assert cfg.MODEL.ROI_HEADS.NAME == "StandardROIHeads" and cfg.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT == 0.5
    assert cfg.MODEL.META_ARCHITECTURE == "SegdetPanopticFPN" and cfg.INPUT.FORMAT == "RGB"
    demo = load_config(f"{REPO}/configs/detectron2/demo.yaml", ["SOLVER.MAX_ITER", "7"])
    assert demo.SOLVER.MAX_ITER == 7 and demo.INPUT.CLASS_WEIGHTS == "auto" and demo.SOLVER.OPTIMIZER == "ADAMW"
    for name in ("camvid_semantic_R_18.yaml", "pennfudan_panoptic_R_18.yaml"):
        assert load_config(f"{REPO}/configs/detectron2/{name}").MODEL.RESNETS.DEPTH == 18


@pytest.mark.parametrize("opts, names", [
    (["MODEL.SEM_SEG_HEAD.LOSS_TYP", "dice"], "MODEL.SEM_SEG_HEAD.LOSS_TYP"),
    (["MODEL.SEM_SEG_HEAD.LOSS_TYPE", "hinge"], "MODEL.SEM_SEG_HEAD.LOSS_TYPE"),
    (["INPUT.FORMAT", "BGR"], "INPUT.FORMAT"),
    (["TEST.TILE_OVERLAP", "1.5"], "TEST.TILE_OVERLAP"),
    (["SOLVER.MAX_ITER"], "KEY VALUE"),
])
def test_bad_config_is_a_config_error_naming_the_key(opts, names):
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        load_config(f"{REPO}/configs/detectron2/demo.yaml", opts)


def test_missing_config_file_is_a_config_error():
    with pytest.raises(ConfigError, match="config file not found: nowhere.yaml"):
        load_config("nowhere.yaml")


def test_segdet_datasets_in_detectron2s_catalogs(tiny_cfg_factory):
    tiny_cfg_factory()
    meta = D2MetadataCatalog.get("tiny_train")
    segdet_meta = MetadataCatalog.get("tiny_train")
    assert meta.stuff_classes == ["background", "orange", "lemon", "apple", "border"]
    assert meta.thing_classes == ["orange", "lemon", "apple"]
    assert meta.thing_dataset_id_to_contiguous_id == {1: 0, 2: 1, 3: 2}
    assert meta.stuff_dataset_id_to_contiguous_id == {i: i for i in range(5)}
    assert meta.ignore_label == 4 and meta.ignore_class_ids == [4] and meta.evaluator_type == "segdet"
    assert meta.thing_colors == [list(segdet_meta.class_colors[i]) for i in (1, 2, 3)]
    assert meta.label_format == "gray" and meta.segdet_metadata["class_names"] == segdet_meta.class_names
    d2_dicts, segdet_dicts = D2DatasetCatalog.get("tiny_train"), DatasetCatalog.get("tiny_train")
    assert len(d2_dicts) == len(segdet_dicts) == 4
    pairs = [(a["category_id"], b["category_id"]) for d, s in zip(d2_dicts, segdet_dicts)
             for a, b in zip(d["annotations"], s["annotations"])]
    assert pairs and all([1, 2, 3][index] == class_id for index, class_id in pairs)
    assert [d["sem_seg_file_name"] for d in d2_dicts] == [d["sem_seg_file_name"] for d in segdet_dicts]


def test_built_in_datasets_are_registered_on_import():
    assert "demo_fruit_train" in D2DatasetCatalog.list() and "camvid_val" in D2DatasetCatalog.list()
    assert D2MetadataCatalog.get("pennfudan_train").thing_classes == ["person"]


def _run(code):
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_import_segdet_never_imports_detectron2():
    result = _run("import sys, segdet, segdet.data, segdet.modeling, segdet.evaluation, segdet.inference.predictor, "
                  "segdet.inference.predict_files; print('detectron2' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_segdet_d2_without_detectron2_is_one_clear_import_error():
    result = _run("import sys; sys.modules['detectron2'] = None\nimport segdet.d2")
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: segdet.d2 needs detectron2")
    assert "install it from its source" in last and "Inside detectron2" in last
