"""The one Metadata an experiment uses: from its datasets, with the config's overrides, checked
against the config's class counts."""
from __future__ import annotations

from typing import Sequence

from segdet.config.experiment import check_config_matches, metadata_for_config
from segdet.data.catalog import MetadataCatalog
from segdet.structures.metadata import Metadata
from segdet.errors import ConfigError


def resolve_metadata(cfg, dataset_names: Sequence[str] | None = None) -> Metadata:
    """Metadata shared by the named datasets (default: DATASETS.TRAIN, else DATASETS.TEST), with
    the config's overrides (`metadata_for_config`) applied. The first dataset's metadata is the
    one returned (its label format and json file).

    Raises ConfigError when the datasets disagree on their classes, or the config's NUM_CLASSES
    do not match them.
    """
    names = list(dataset_names or cfg.DATASETS.TRAIN or cfg.DATASETS.TEST)
    if not names:
        raise ConfigError("config: DATASETS.TRAIN and DATASETS.TEST are both empty; name at least one dataset")
    first = MetadataCatalog.get(names[0])
    for name in names[1:]:
        other = MetadataCatalog.get(name)
        if other.class_names != first.class_names:
            raise ConfigError(
                f"datasets '{names[0]}' and '{name}' have different classes: {first.class_names} vs {other.class_names}"
            )
    metadata = metadata_for_config(cfg, first)
    check_config_matches(cfg, metadata)
    return metadata


def dataset_metadata(name: str, config_file: str | None = None) -> Metadata:
    """A registered dataset's metadata, as an experiment with that config sees it: with a config,
    its DATASETS.CUSTOM are registered first and its overrides apply (`metadata_for_config`)."""
    if not config_file:
        return MetadataCatalog.get(name)
    from segdet.config import load_config
    from segdet.data.formats import register_from_config

    cfg = load_config(config_file)
    register_from_config(cfg)
    return metadata_for_config(cfg, MetadataCatalog.get(name))
