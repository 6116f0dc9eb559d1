"""A tiny fruit dataset (8 images of 64x64) and a CPU-sized detectron2 config with segdet's parts.

Every test module of this folder starts with `pytest.importorskip("detectron2._C", ...)`: CI has
no detectron2 (it is on no package registry), and these tests are then skipped with that reason.
This file imports no detectron2.
"""
import os
import subprocess
import sys

import pytest

from tests.engine.conftest import TINY_MODEL
from tests.engine.conftest import tiny_fruit_root  # noqa: F401  (the same tiny dataset: 8 images of 64x64)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIP_REASON = ("detectron2 is not installed (it is on no package registry; CI has none): build it from "
               "source to run the segdet.d2 tests, see the README's 'Inside detectron2'")

# The tiny datasets declared as segdet's engine tests declare them (DATASETS.CUSTOM, coco_semantic).
DATASETS = TINY_MODEL[TINY_MODEL.index("DATASETS:"):TINY_MODEL.index("INPUT:")]

TINY_CONFIG = """
_BASE_: "{repo}/configs/detectron2/Base-Segdet-PanopticFPN.yaml"
MODEL:
  DEVICE: cpu
  META_ARCHITECTURE: {arch}
  MASK_ON: {mask_on}
  BACKBONE: {{FREEZE_AT: 0}}
  RESNETS: {{DEPTH: 18, RES2_OUT_CHANNELS: 64, NORM: BN}}
  FPN: {{OUT_CHANNELS: 32}}
  ANCHOR_GENERATOR: {{SIZES: [[8], [16], [32], [64], [128]]}}
  RPN: {{PRE_NMS_TOPK_TRAIN: 200, POST_NMS_TOPK_TRAIN: 50, PRE_NMS_TOPK_TEST: 100, POST_NMS_TOPK_TEST: 50}}
  ROI_HEADS: {{NUM_CLASSES: 3, BATCH_SIZE_PER_IMAGE: 32}}
  ROI_BOX_HEAD: {{FC_DIM: 64, POOLER_SAMPLING_RATIO: 1}}
  ROI_MASK_HEAD: {{CONV_DIM: 32, NUM_CONV: 1, POOLER_SAMPLING_RATIO: 1}}
  SEM_SEG_HEAD: {{NUM_CLASSES: 5, CONVS_DIM: 32, CLASS_WEIGHT_CORRECTION: 0.5}}
{datasets}INPUT: {{MIN_SIZE_TRAIN: [0], MAX_SIZE_TRAIN: 0, MIN_SIZE_TEST: 0, MAX_SIZE_TEST: 0, RANDOM_FLIP: horizontal,
        CLASS_WEIGHTS: auto}}
DATALOADER: {{NUM_WORKERS: 0}}
SOLVER:
  OPTIMIZER: ADAMW
  BASE_LR: 0.001
  IMS_PER_BATCH: 2
  MAX_ITER: 20
  WARMUP_ITERS: 2
  STEPS: (15,)
  CHECKPOINT_PERIOD: 10
TEST: {{DETECTIONS_PER_IMAGE: 10}}
SEED: 3
OUTPUT_DIR: {output}
"""


def write_tiny_config(path, root, output, mask_on=True):
    arch = "SegdetPanopticFPN" if mask_on else "SegdetSemanticSegmentor"
    datasets = DATASETS.format(root=root, test='("tiny_val",)')
    path.write_text(TINY_CONFIG.format(repo=REPO, arch=arch, mask_on=mask_on, output=output, datasets=datasets))
    return str(path)


def run_tool(script, *args, timeout=600):
    """Run tools/<script> with this interpreter from the repository root; returns the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", script), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tiny_cfg_factory(tiny_fruit_root, tmp_path):
    """tiny_cfg_factory(mask_on=True, opts=()) -> frozen segdet.d2 config, its datasets registered in
    segdet's and detectron2's catalogs (removed again afterwards)."""
    registered = []

    def make(mask_on=True, opts=(), name="cfg"):
        from segdet.d2 import load_config, register_segdet_datasets

        path = write_tiny_config(tmp_path / f"{name}.yaml", tiny_fruit_root, str(tmp_path / f"out_{name}"), mask_on)
        cfg = load_config(path, list(opts))
        registered.extend(register_segdet_datasets(cfg))
        return cfg

    yield make
    if registered:
        from detectron2.data import DatasetCatalog as D2DatasetCatalog
        from detectron2.data import MetadataCatalog as D2MetadataCatalog

        from segdet.data.catalog import DatasetCatalog, MetadataCatalog

        for name in set(registered):
            for catalog in (DatasetCatalog, MetadataCatalog, D2DatasetCatalog):
                catalog.remove(name)
            if name in D2MetadataCatalog.list():
                D2MetadataCatalog.remove(name)
