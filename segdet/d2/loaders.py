"""detectron2's data loaders with segdet's mapper, and the class weights of a training run."""
from __future__ import annotations

from detectron2.data import build_detection_test_loader, build_detection_train_loader, get_detection_dataset_dicts

from segdet.d2.datasets import segdet_metadata
from segdet.d2.mapper import SegdetDatasetMapper
from segdet.data.class_weights import resolve_class_weights


def training_dicts(cfg) -> list[dict]:
    """The dicts of DATASETS.TRAIN from detectron2's catalog."""
    return get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)


def with_class_weights(cfg):
    """The config with INPUT.CLASS_WEIGHTS as the list training uses (segdet's
    `resolve_class_weights`: "auto" = median-frequency weights of DATASETS.TRAIN, ignore classes 0),
    computed once for the model and the loader. A config without class weights is returned as it is."""
    if cfg.INPUT.CLASS_WEIGHTS is None:
        return cfg
    metadata = segdet_metadata(cfg)
    weights = resolve_class_weights(cfg, training_dicts(cfg), metadata, metadata.ignore_class_ids)
    cfg = cfg.clone()
    cfg.defrost()
    cfg.INPUT.CLASS_WEIGHTS = weights
    cfg.freeze()
    return cfg


def build_train_loader(cfg):
    """detectron2's training loader over DATASETS.TRAIN with SegdetDatasetMapper; each image comes
    INPUT.CROP.CROPS_PER_IMAGE times per epoch (a fresh crop each time)."""
    metadata = segdet_metadata(cfg)
    dicts = training_dicts(cfg)
    weights = resolve_class_weights(cfg, dicts, metadata, metadata.ignore_class_ids)
    mapper = SegdetDatasetMapper.from_config(cfg, is_train=True, metadata=metadata, class_weights=weights)
    repeats = cfg.INPUT.CROP.CROPS_PER_IMAGE
    dicts = [d for d in dicts for _ in range(repeats)]
    return build_detection_train_loader(cfg, mapper=mapper, dataset=dicts)


def build_test_loader(cfg, dataset_name: str):
    """detectron2's test loader over one dataset with SegdetDatasetMapper (labels left to the evaluators)."""
    mapper = SegdetDatasetMapper.from_config(cfg, is_train=False, metadata=segdet_metadata(cfg, [dataset_name]))
    return build_detection_test_loader(cfg, dataset_name, mapper=mapper)
