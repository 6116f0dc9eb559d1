import pytest

from segdet.config import get_cfg, load_config
from segdet.errors import ConfigError


def write(path, text):
    path.write_text(text)
    return str(path)


def test_defaults_use_detectron2_key_names():
    cfg = get_cfg()
    for key in ("MODEL.META_ARCHITECTURE", "MODEL.RESNETS.DEPTH", "MODEL.MASK_ON", "MODEL.ROI_HEADS.NUM_CLASSES",
                "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "MODEL.SEM_SEG_HEAD.IGNORE_VALUE", "DATASETS.TRAIN",
                "DATASETS.TEST", "INPUT.MIN_SIZE_TRAIN", "SOLVER.BASE_LR", "TEST.EVAL_PERIOD", "OUTPUT_DIR", "SEED",
                "MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS", "INPUT.CLASS_WEIGHTS", "INPUT.CROP.SIZE",
                "INPUT.CROP.CROPS_PER_IMAGE"):
        node = cfg
        for part in key.split("."):
            node = node[part]


def test_base_inheritance_and_overrides(tmp_path):
    write(tmp_path / "base.yaml", "SOLVER:\n  BASE_LR: 0.5\n  MAX_ITER: 10\nMODEL:\n  RESNETS:\n    DEPTH: 18\n")
    child = write(tmp_path / "child.yaml", "_BASE_: base.yaml\nSOLVER:\n  MAX_ITER: 20\n")
    cfg = load_config(child, ["SOLVER.BASE_LR", "0.25", "INPUT.CLASS_WEIGHTS", "[1, 2.5]",
                              "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "2"])
    assert cfg.SOLVER.MAX_ITER == 20
    assert cfg.SOLVER.BASE_LR == 0.25
    assert cfg.MODEL.RESNETS.DEPTH == 18
    assert cfg.INPUT.CLASS_WEIGHTS == [1, 2.5]
    assert cfg.is_frozen()


def test_int_accepted_where_default_is_float(tmp_path):
    path = write(tmp_path / "c.yaml", "SOLVER:\n  BASE_LR: 1\n")
    assert load_config(path).SOLVER.BASE_LR == 1.0
    assert isinstance(load_config(path).SOLVER.BASE_LR, float)


def test_misspelled_key_in_file_names_key_file_and_suggestion(tmp_path):
    path = write(tmp_path / "bad.yaml", "SOLVER:\n  BASE_RL: 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert "SOLVER.BASE_RL" in msg and "bad.yaml" in msg and "SOLVER.BASE_LR" in msg


def test_misspelled_key_in_base_file(tmp_path):
    write(tmp_path / "base.yaml", "MODLE:\n  MASK_ON: False\n")
    child = write(tmp_path / "child.yaml", "_BASE_: base.yaml\n")
    with pytest.raises(ConfigError, match="MODLE"):
        load_config(child)


def test_misspelled_key_on_command_line():
    with pytest.raises(ConfigError, match="MODEL.MASK_ONN"):
        load_config(None, ["MODEL.MASK_ONN", "False"])


def test_wrong_type_names_key(tmp_path):
    path = write(tmp_path / "c.yaml", "SOLVER:\n  MAX_ITER: many\n")
    with pytest.raises(ConfigError, match="SOLVER.MAX_ITER"):
        load_config(path)


def test_bad_choice_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="SOLVER.OPTIMIZER"):
        load_config(None, ["SOLVER.OPTIMIZER", "LBFGS"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="KEY VALUE"):
        load_config(None, ["SOLVER.BASE_LR"])


def test_class_weights_checked_against_num_classes():
    with pytest.raises(ConfigError, match="INPUT.CLASS_WEIGHTS"):
        load_config(None, ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", "3", "INPUT.CLASS_WEIGHTS", "[1.0, 2.0]"])
    with pytest.raises(ConfigError, match="INPUT.CLASS_WEIGHTS"):
        load_config(None, ["INPUT.CLASS_WEIGHTS", "often"])
    assert load_config(None, ["INPUT.CLASS_WEIGHTS", "auto"]).INPUT.CLASS_WEIGHTS == "auto"


def test_ignore_class_ids_checked():
    with pytest.raises(ConfigError, match="IGNORE_CLASS_IDS"):
        load_config(None, ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", "3", "MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS", "[3]"])
    cfg = load_config(None, ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", "5", "MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS", "[2, 4]"])
    assert cfg.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS == [2, 4]


def test_custom_datasets_section_accepts_new_keys(tmp_path):
    path = write(tmp_path / "c.yaml",
                 "DATASETS:\n  CUSTOM:\n    pills_train:\n      FORMAT: image_folder\n      IMAGE_DIR: /x\n")
    cfg = load_config(path)
    assert cfg.DATASETS.CUSTOM.pills_train.FORMAT == "image_folder"


@pytest.mark.parametrize("opts,key", [
    (["TEST.AUG.MIN_SIZES", "()"], "TEST.AUG.MIN_SIZES"),
    (["TEST.AUG.MIN_SIZES", "(0,)"], "TEST.AUG.MIN_SIZES"),
    (["TEST.AUG.MIN_SIZES", "(360, -288)"], "TEST.AUG.MIN_SIZES"),
    (["TEST.AUG.MAX_SIZE", "-1"], "TEST.AUG.MAX_SIZE"),
])
def test_bad_test_time_augmentation_is_one_line_naming_the_key(opts, key):
    with pytest.raises(ConfigError) as e:
        load_config(None, ["TEST.AUG.ENABLED", "True", *opts])
    message = str(e.value)
    assert message.startswith(f"config key {key} = ") and "\n" not in message


def test_test_time_augmentation_keys_are_detectron2s(tmp_path):
    path = write(tmp_path / "c.yaml", "TEST:\n  AUG:\n    ENABLED: True\n    MIN_SIZES: (288, 360, 432)\n"
                                      "    MAX_SIZE: 1000\n    FLIP: False\n")
    aug = load_config(path).TEST.AUG
    assert (aug.ENABLED, aug.MIN_SIZES, aug.MAX_SIZE, aug.FLIP) == (True, (288, 360, 432), 1000, False)
    defaults = get_cfg().TEST.AUG
    assert (defaults.ENABLED, defaults.MAX_SIZE, defaults.FLIP) == (False, 4000, True)
