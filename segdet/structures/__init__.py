"""Data structures every layer shares: a dataset's classes (Metadata), box modes, instance
sets and instance masks. They import nothing from the rest of segdet but errors and utils."""
from segdet.structures.boxes import BoxMode
from segdet.structures.instances import Instances
from segdet.structures.metadata import Metadata, load_classes_file

__all__ = ["BoxMode", "Instances", "Metadata", "load_classes_file"]
