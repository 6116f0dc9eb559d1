"""Load, merge and check configs: fvcore CfgNode with `_BASE_`, and errors that name the key."""
from __future__ import annotations

import difflib
import os
from typing import Any, Iterable, Sequence

import yaml
from fvcore.common.config import CfgNode as _FvCfgNode

from segdet.errors import ConfigError


class CfgNode(_FvCfgNode):
    """fvcore's CfgNode whose merges raise ConfigError naming the bad key and its source."""

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = False) -> None:
        if not os.path.isfile(cfg_filename):
            raise ConfigError(f"config file not found: {cfg_filename}")
        try:
            loaded = self.load_yaml_with_base(cfg_filename, allow_unsafe=False)
        except yaml.YAMLError as e:
            raise ConfigError(f"{cfg_filename}: not valid YAML: {e}") from None
        except (OSError, AssertionError) as e:
            raise ConfigError(f"{cfg_filename}: cannot load (or its _BASE_): {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{cfg_filename}: expected a mapping of keys at the top level")
        _check_and_coerce(loaded, self, "", source=cfg_filename)
        self.merge_from_other_cfg(type(self)(loaded))

    def merge_from_text(self, text: str, source: str) -> None:
        """Merge a YAML text (a dumped config, e.g. the one a model file carries) without `_BASE_`."""
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping of keys at the top level")
        _check_and_coerce(loaded, self, "", source=source)
        self.merge_from_other_cfg(type(self)(loaded))

    def merge_from_list(self, cfg_list: list[str]) -> None:
        if len(cfg_list) % 2:
            raise ConfigError(
                f"command-line overrides must come in KEY VALUE pairs; got {len(cfg_list)} items: {cfg_list}"
            )
        for full_key, raw in zip(cfg_list[0::2], cfg_list[1::2]):
            node, leaf = _find_parent(self, full_key, source="command line")
            value = self._decode_cfg_value(raw)
            node[leaf] = _coerce_value(value, node[leaf], full_key, "command line")


def _suggest(key: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _find_parent(cfg: CfgNode, full_key: str, source: str) -> tuple[CfgNode, str]:
    node = cfg
    parts = full_key.split(".")
    for depth, part in enumerate(parts):
        prefix = ".".join(parts[:depth])
        if not isinstance(node, _FvCfgNode) or part not in node:
            if isinstance(node, _FvCfgNode) and node.is_new_allowed() and depth == len(parts) - 1:
                node[part] = None
                break
            options = [f"{prefix}.{k}" if prefix else k for k in node] if isinstance(node, dict) else []
            raise ConfigError(f"{source}: unknown config key '{full_key}'{_suggest(full_key, options)}")
        if depth < len(parts) - 1:
            node = node[part]
    return node, parts[-1]


def _coerce_value(value: Any, default: Any, full_key: str, source: str) -> Any:
    """Accept what yacs accepts, plus int where the default is a float; else a clear error."""
    if default is None or value is None or type(value) is type(default):
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(default)(value)
    if isinstance(default, (list, tuple)) and isinstance(value, (int, float, str)) and not default:
        return type(default)([value])
    raise ConfigError(
        f"{source}: '{full_key}' expects {type(default).__name__} (default {default!r}), "
        f"got {type(value).__name__} {value!r}"
    )


def _check_and_coerce(loaded: dict, defaults: _FvCfgNode, prefix: str, source: str) -> None:
    """Name unknown keys and fix harmless type differences in a loaded YAML dict, in place."""
    for key in list(loaded):
        full_key = f"{prefix}{key}"
        if key not in defaults:
            if defaults.is_new_allowed():
                continue
            options = [f"{prefix}{k}" for k in defaults]
            raise ConfigError(f"{source}: unknown config key '{full_key}'{_suggest(full_key, options)}")
        default = defaults[key]
        if isinstance(default, _FvCfgNode):
            if not isinstance(loaded[key], dict):
                raise ConfigError(f"{source}: '{full_key}' is a section; expected a mapping of keys")
            _check_and_coerce(loaded[key], default, f"{full_key}.", source)
        else:
            # As yacs does when it builds a node: "(1, 2)" in YAML means the tuple.
            value = _FvCfgNode._decode_cfg_value(loaded[key])
            loaded[key] = _coerce_value(value, default, full_key, source)


def get_cfg() -> CfgNode:
    """A fresh copy of the default config."""
    from segdet.config.defaults import _C

    return _C.clone()


def load_config(config_file: str | None = None, opts: Sequence[str] = (), *, text: str | None = None,
                source: str = "config text") -> CfgNode:
    """Defaults, then a YAML file (with `_BASE_`) or a YAML text, then `KEY VALUE` overrides;
    checked and frozen.

    Args:
        config_file: a YAML config, or None for the defaults.
        opts: flat list of overrides, e.g. ["SOLVER.BASE_LR", "0.01"].
        text: a YAML config as text instead of a file (e.g. the one a model file carries).
        source: what errors call the text, e.g. "config stored in model file model.pth".
    Returns:
        The frozen config.
    """
    cfg = get_cfg()
    if config_file:
        cfg.merge_from_file(config_file)
    if text is not None:
        cfg.merge_from_text(text, source)
    if opts:
        cfg.merge_from_list(list(opts))
    validate_config(cfg)
    cfg.freeze()
    return cfg


_CHOICES = {
    "MODEL.RESNETS.DEPTH": (18, 34, 50, 101, 152),
    "MODEL.RESNETS.NORM": ("BN", "FrozenBN", "GN", "SyncBN"),
    "MODEL.SEM_SEG_HEAD.NORM": ("GN", "BN", ""),
    "INPUT.MIN_SIZE_TRAIN_SAMPLING": ("choice", "range"),
    "INPUT.FORMAT": ("RGB",),
    "INPUT.CROP.TYPE": ("absolute",),
    "SOLVER.LR_SCHEDULER_NAME": ("WarmupMultiStepLR", "WarmupCosineLR"),
    "SOLVER.WARMUP_METHOD": ("linear", "constant"),
    "SOLVER.CLIP_GRADIENTS.CLIP_TYPE": ("value", "norm"),
    "SOLVER.AMP.DTYPE": ("auto", "bfloat16", "float16"),
    "TEST.AMP.DTYPE": ("auto", "bfloat16", "float16"),
    "TEST.ENGINE": ("torch", "onnxruntime"),
}
# The keys segdet adds to detectron2's (and INPUT.RANDOM_FLIP, detectron2's key with "both" added):
# `validate_segdet_keys` checks them alone, also in a detectron2 config (segdet.d2).
# The semantic losses (segdet.modeling.losses implements each).
SEM_SEG_LOSS_TYPES = ("cross_entropy", "focal", "dice", "cross_entropy_dice", "ohem_cross_entropy", "lovasz",
                      "cross_entropy_lovasz")
_SEGDET_CHOICES = {
    "MODEL.SEM_SEG_HEAD.LOSS_TYPE": SEM_SEG_LOSS_TYPES,
    "INPUT.RANDOM_FLIP": ("horizontal", "vertical", "both", "none"),
    "SOLVER.OPTIMIZER": ("SGD", "ADAMW"),
    "SOLVER.BEST_CHECKPOINT_MODE": ("max", "min"),
    "TEST.TILE_MERGE": ("max", "mean"),
}


def _get(cfg: CfgNode, full_key: str) -> Any:
    node = cfg
    for part in full_key.split("."):
        node = node[part]
    return node


def _check_choices(cfg: CfgNode, choices_by_key: dict) -> None:
    for key, choices in choices_by_key.items():
        value = _get(cfg, key)
        if value not in choices:
            raise ConfigError(f"config key {key} = {value!r}; expected one of {list(choices)}")


def _check_positive(cfg: CfgNode, keys: Sequence[str]) -> None:
    for key in keys:
        if _get(cfg, key) <= 0:
            raise ConfigError(f"config key {key} = {_get(cfg, key)}; must be > 0")


def validate_config(cfg: CfgNode) -> None:
    """Check values that have a fixed set of choices or ranges; raise ConfigError naming the key."""
    _check_choices(cfg, _CHOICES)
    _check_positive(cfg, ("SOLVER.MAX_ITER", "SOLVER.IMS_PER_BATCH", "MODEL.SEM_SEG_HEAD.NUM_CLASSES",
                          "MODEL.ROI_HEADS.NUM_CLASSES"))
    if len(cfg.INPUT.CROP.SIZE) != 2 or min(cfg.INPUT.CROP.SIZE) <= 0:
        raise ConfigError(f"config key INPUT.CROP.SIZE = {cfg.INPUT.CROP.SIZE}; expected [height, width] > 0")
    _check_test_aug(cfg)
    if not 0 <= cfg.INPUT.MOSAIC.PROB <= 1:
        raise ConfigError(f"config key INPUT.MOSAIC.PROB = {cfg.INPUT.MOSAIC.PROB}; must be in [0, 1]")
    validate_segdet_keys(cfg)


def _check_test_aug(cfg: CfgNode) -> None:
    """TEST.AUG (test-time augmentation): short sides > 0, a long-side bound >= 0 (0 = none)."""
    sizes = cfg.TEST.AUG.MIN_SIZES
    if not isinstance(sizes, (list, tuple)) or not sizes or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes
    ):
        raise ConfigError(f"config key TEST.AUG.MIN_SIZES = {sizes!r}; expected one or more short sides > 0, "
                          "e.g. (288, 360, 432)")
    if cfg.TEST.AUG.MAX_SIZE < 0:
        raise ConfigError(f"config key TEST.AUG.MAX_SIZE = {cfg.TEST.AUG.MAX_SIZE}; expected >= 0 (0 = no bound)")


def validate_segdet_keys(cfg) -> None:
    """Check the keys segdet adds to detectron2's (ignore ids, class weights, losses, augmentations,
    tiles); raise ConfigError naming the key. Works on a detectron2 config with them (segdet.d2)."""
    _check_choices(cfg, _SEGDET_CHOICES)
    _check_positive(cfg, ("INPUT.CROP.CROPS_PER_IMAGE",))
    if not 0 <= cfg.TEST.TILE_OVERLAP < 1:
        raise ConfigError(f"config key TEST.TILE_OVERLAP = {cfg.TEST.TILE_OVERLAP}; must be in [0, 1)")
    for key in ("INPUT.BRIGHTNESS", "INPUT.CONTRAST", "INPUT.ROTATION.ANGLE_RANGE"):
        value = _get(cfg, key)
        if len(value) != 2 or value[0] > value[1]:
            raise ConfigError(f"config key {key} = {value}; expected [low, high] with low <= high")
    weights = cfg.INPUT.CLASS_WEIGHTS
    if weights is not None and weights != "auto":
        if not isinstance(weights, (list, tuple)) or not all(
            isinstance(w, (int, float)) and w >= 0 for w in weights
        ):
            raise ConfigError(
                f"config key INPUT.CLASS_WEIGHTS = {weights!r}; expected null, 'auto' or a list of weights >= 0"
            )
        if len(weights) != cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES:
            raise ConfigError(
                f"config key INPUT.CLASS_WEIGHTS has {len(weights)} weights but "
                f"MODEL.SEM_SEG_HEAD.NUM_CLASSES = {cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES}"
            )
    ignore_ids = cfg.MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS
    if ignore_ids is not None:
        if not isinstance(ignore_ids, (list, tuple)) or not all(isinstance(i, int) for i in ignore_ids):
            raise ConfigError(
                f"config key MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS = {ignore_ids!r}; expected null or a list of class ids"
            )
        bad = [i for i in ignore_ids if not 0 <= i < cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES]
        if bad:
            raise ConfigError(
                f"config key MODEL.SEM_SEG_HEAD.IGNORE_CLASS_IDS has ids {bad} outside "
                f"0..{cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES - 1}"
            )
    for key in ("DICE_WEIGHT", "LOVASZ_WEIGHT"):
        if not 0 <= cfg.MODEL.SEM_SEG_HEAD[key] <= 1:
            raise ConfigError(f"config key MODEL.SEM_SEG_HEAD.{key} must be in [0, 1]")
    if not 0 < cfg.MODEL.SEM_SEG_HEAD.OHEM_THRESH <= 1:
        raise ConfigError("config key MODEL.SEM_SEG_HEAD.OHEM_THRESH must be in (0, 1]")
    min_kept = cfg.MODEL.SEM_SEG_HEAD.OHEM_MIN_KEPT
    if not isinstance(min_kept, int) or min_kept < 0:
        raise ConfigError(f"config key MODEL.SEM_SEG_HEAD.OHEM_MIN_KEPT = {min_kept!r}; expected a pixel count >= 0")
