"""A tiny fruit dataset (8 images of 64x64) and a CPU-sized config that trains on it in seconds."""
import os

import pytest

from segdet.config import load_config
from segdet.data.catalog import DatasetCatalog, MetadataCatalog
from segdet.data.demo import generate_demo_dataset
from segdet.data.formats import register_from_config

TINY_MODEL = """
MODEL:
  DEVICE: cpu
  META_ARCHITECTURE: {arch}
  MASK_ON: {mask_on}
  RESNETS: {{DEPTH: 18}}
  FPN: {{OUT_CHANNELS: 32}}
  ANCHOR_GENERATOR: {{SIZES: [[8], [16], [32], [64], [128]]}}
  RPN: {{POST_NMS_TOPK_TRAIN: 50, POST_NMS_TOPK_TEST: 50, PRE_NMS_TOPK_TEST: 100}}
  ROI_HEADS: {{NUM_CLASSES: 3, BATCH_SIZE_PER_IMAGE: 32}}
  ROI_BOX_HEAD: {{FC_DIM: 64}}
  ROI_MASK_HEAD: {{CONV_DIM: 32, NUM_CONV: 1}}
  SEM_SEG_HEAD: {{NUM_CLASSES: 5, CONVS_DIM: 32}}
DATASETS:
  TRAIN: ("tiny_train",)
  TEST: {test}
  CUSTOM:
    tiny_train: {{FORMAT: coco_semantic, JSON_FILE: {root}/annotations/instances_train.json,
                 IMAGE_ROOT: {root}/images/train, SEM_SEG_ROOT: {root}/segmentation/train,
                 CLASSES_FILE: {root}/classes.json}}
    tiny_val: {{FORMAT: coco_semantic, JSON_FILE: {root}/annotations/instances_val.json,
               IMAGE_ROOT: {root}/images/val, SEM_SEG_ROOT: {root}/segmentation/val,
               CLASSES_FILE: {root}/classes.json}}
INPUT: {{RANDOM_FLIP: horizontal}}
DATALOADER: {{NUM_WORKERS: 0}}
SOLVER:
  OPTIMIZER: ADAMW
  BASE_LR: 0.001
  IMS_PER_BATCH: 2
  MAX_ITER: 4
  WARMUP_ITERS: 2
  STEPS: (3,)
  CHECKPOINT_PERIOD: 2
TEST: {{DETECTIONS_PER_IMAGE: 10}}
SEED: 3
DETERMINISTIC: True
OUTPUT_DIR: {output}
"""


@pytest.fixture(scope="session")
def tiny_fruit_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_fruit")
    generate_demo_dataset(str(root), num_images=8, seed=1, image_size=(64, 64), splits=(0.5, 0.25, 0.25))
    return str(root)


def write_tiny_config(path, root, output, mask_on=True, test=("tiny_val",)):
    arch = "PanopticFPN" if mask_on else "SemanticSegmentor"
    text = TINY_MODEL.format(arch=arch, mask_on=mask_on, root=root, output=output,
                             test="(" + "".join(f'"{t}", ' for t in test) + ")")
    path.write_text(text)
    return str(path)


@pytest.fixture
def tiny_cfg_factory(tiny_fruit_root, tmp_path):
    """tiny_cfg_factory(mask_on=True, test=("tiny_val",), opts=()) -> (frozen cfg, config file path)."""
    registered = []

    def make(mask_on=True, test=("tiny_val",), opts=(), name="cfg"):
        path = write_tiny_config(tmp_path / f"{name}.yaml", tiny_fruit_root, str(tmp_path / f"out_{name}"),
                                 mask_on, test)
        cfg = load_config(path, list(opts))
        registered.extend(register_from_config(cfg))
        return cfg, path

    yield make
    for name in registered:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def read_metrics(output_dir):
    import json

    with open(os.path.join(output_dir, "metrics.json")) as f:
        return [json.loads(line) for line in f if line.strip()]
