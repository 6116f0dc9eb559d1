"""segdet's config keys on detectron2's CfgNode (as detectron2's projects do with `add_*_config`).

    cfg = get_cfg()                      # detectron2's defaults + segdet's keys
    cfg = load_config("configs/detectron2/demo.yaml", ["SOLVER.MAX_ITER", "20"])

The keys and their defaults are segdet's own (`segdet.config.defaults`): the same names and
meanings in both engines. A config file may inherit a config of detectron2's model zoo with
`_BASE_: "model_zoo:<path under detectron2's configs/>"`, resolved in the installed detectron2,
so that segdet ships no copy of it.
"""
from __future__ import annotations

import copy
import os
from typing import Sequence

import yaml
from detectron2 import model_zoo
from detectron2.config import CfgNode
from detectron2.config import get_cfg as detectron2_defaults
from fvcore.common.config import CfgNode as FvCfgNode

from segdet.config.config import get_cfg as segdet_defaults
from segdet.config.config import validate_segdet_keys
from segdet.errors import ConfigError

MODEL_ZOO_PREFIX = "model_zoo:"

# The keys segdet adds to detectron2's; their defaults come from segdet's own config.
SEGDET_KEYS = (
    "MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS",
    "MODEL.SEM_SEG_HEAD.LOSS_TYPE",
    "MODEL.SEM_SEG_HEAD.FOCAL_GAMMA",
    "MODEL.SEM_SEG_HEAD.DICE_WEIGHT",
    "MODEL.SEM_SEG_HEAD.OHEM_THRESH",
    "MODEL.SEM_SEG_HEAD.OHEM_MIN_KEPT",
    "MODEL.SEM_SEG_HEAD.LOVASZ_WEIGHT",
    "MODEL.SEM_SEG_HEAD.CLASS_WEIGHT_CORRECTION",
    "INPUT.CLASS_WEIGHTS",
    "INPUT.CROP.CROPS_PER_IMAGE",
    "INPUT.MERGE_INTO_BACKGROUND",
    "INPUT.BACKGROUND_CLASS_ID",
    "INPUT.ROTATION.ENABLED",
    "INPUT.ROTATION.ANGLE_RANGE",
    "INPUT.BRIGHTNESS",
    "INPUT.CONTRAST",
    "DATASETS.CUSTOM",
    "SOLVER.OPTIMIZER",
    "SOLVER.BEST_CHECKPOINT_METRIC",
    "SOLVER.BEST_CHECKPOINT_MODE",
    "TEST.TILE_SIZE",
    "TEST.TILE_OVERLAP",
    "TEST.TILE_MERGE",
    "TEST.PER_IMAGE_METRICS",
    "TEST.BOUNDARY_IOU_WIDTH",
)


class SegdetCfgNode(CfgNode):
    """detectron2's CfgNode whose `_BASE_` may name a config of detectron2's model zoo."""

    @classmethod
    def load_yaml_with_base(cls, filename: str, allow_unsafe: bool = False):
        # fvcore joins a relative `_BASE_` to the folder of the file that names it, so the
        # prefix can stand anywhere in the path it hands on.
        if MODEL_ZOO_PREFIX in filename:
            name = filename.split(MODEL_ZOO_PREFIX, 1)[1]
            try:
                filename = model_zoo.get_config_file(name)
            except RuntimeError as e:
                raise ConfigError(f"_BASE_ '{MODEL_ZOO_PREFIX}{name}': {e}") from None
        return super().load_yaml_with_base(filename, allow_unsafe=allow_unsafe)


def add_segdet_config(cfg: CfgNode) -> CfgNode:
    """Add segdet's keys (SEGDET_KEYS, with segdet's defaults) to a detectron2 config, in place.

    Returns:
        cfg.
    """
    defaults = segdet_defaults()
    for key in SEGDET_KEYS:
        *parents, leaf = key.split(".")
        src, dst = defaults, cfg
        for part in parents:
            src = src[part]
            if part not in dst:
                dst[part] = type(cfg)()
            dst = dst[part]
        value = src[leaf]
        if isinstance(value, FvCfgNode):  # a section, e.g. DATASETS.CUSTOM (new keys allowed)
            dst[leaf] = type(cfg)(value, new_allowed=value.is_new_allowed())
        else:
            dst[leaf] = copy.deepcopy(value)
    return cfg


def get_cfg() -> SegdetCfgNode:
    """detectron2's default config with segdet's keys."""
    return add_segdet_config(SegdetCfgNode(detectron2_defaults()))


def validate_segdet_config(cfg: CfgNode) -> None:
    """segdet's keys (as the standalone config checks them) and what segdet's parts need of
    detectron2's: RGB input (segdet reads images as RGB; PIXEL_MEAN/STD in RGB order)."""
    validate_segdet_keys(cfg)
    if cfg.INPUT.FORMAT != "RGB":
        raise ConfigError(f"config key INPUT.FORMAT = {cfg.INPUT.FORMAT!r}: segdet's mapper and models take RGB "
                          "images; set INPUT.FORMAT RGB and MODEL.PIXEL_MEAN / PIXEL_STD in RGB order")


def load_config(config_file: str | None = None, opts: Sequence[str] = (), *, text: str | None = None,
                source: str = "config text") -> SegdetCfgNode:
    """detectron2's defaults + segdet's keys, then a YAML file (or text, e.g. the config a model
    file carries), then KEY VALUE overrides; checked and frozen.

    Raises:
        ConfigError naming the file or key (a missing file, a bad YAML, an unknown key, a bad value).
    """
    cfg = get_cfg()
    if config_file:
        if not os.path.isfile(config_file):
            raise ConfigError(f"config file not found: {config_file}")
        _merge(cfg, config_file, lambda: cfg.merge_from_file(config_file, allow_unsafe=False))
    if text is not None:
        _merge(cfg, source, lambda: cfg.merge_from_other_cfg(SegdetCfgNode(yaml.safe_load(text))))
    if opts:
        if len(opts) % 2:
            raise ConfigError(f"command-line overrides must come in KEY VALUE pairs; got {list(opts)}")
        _merge(cfg, "command line", lambda: cfg.merge_from_list(list(opts)))
    validate_segdet_config(cfg)
    cfg.freeze()
    return cfg


def _merge(cfg: CfgNode, source: str, merge) -> None:
    # yacs reports an unknown key or a wrong type as a KeyError / ValueError / AssertionError.
    try:
        merge()
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}") from None
    except (KeyError, ValueError, AssertionError, TypeError) as e:
        message = e.args[0] if e.args else repr(e)
        raise ConfigError(f"{source}: {message}") from None
