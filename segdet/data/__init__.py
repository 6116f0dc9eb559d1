"""Datasets (catalog, formats), label decoding, the mapper and the data loaders."""
from segdet.data.catalog import DatasetCatalog, MetadataCatalog, get_dataset_dicts, register_dataset
from segdet.data.label_codec import LabelCodec
from segdet.structures.metadata import Metadata, load_classes_file

__all__ = [
    "DatasetCatalog",
    "MetadataCatalog",
    "Metadata",
    "LabelCodec",
    "get_dataset_dicts",
    "load_classes_file",
    "register_dataset",
]

# The built-in datasets (demo_fruit_*, camvid_*, pennfudan_*) are known by name on import.
from segdet.data.builtin import register_builtin_datasets  # noqa: E402

register_builtin_datasets()
