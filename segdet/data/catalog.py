"""Named datasets: a loader function and a Metadata per name (detectron2's catalogs)."""
from __future__ import annotations

import difflib
import logging
from typing import Callable

from segdet.structures.metadata import Metadata
from segdet.errors import DataError

logger = logging.getLogger(__name__)


def _unknown(name: str, known: list[str]) -> DataError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return DataError(f"unknown dataset '{name}'.{hint} Registered: {', '.join(sorted(known)) or 'none'}")


class _DatasetCatalog:
    """name -> function returning a list of dataset dicts (detectron2's schema)."""

    def __init__(self) -> None:
        self._loaders: dict[str, Callable[[], list[dict]]] = {}

    def register(self, name: str, loader: Callable[[], list[dict]]) -> None:
        if not callable(loader):
            raise DataError(f"dataset '{name}': the loader must be a function returning a list of dicts")
        if name in self._loaders:
            logger.debug("dataset '%s' registered again; the new loader replaces the old one", name)
        self._loaders[name] = loader

    def get(self, name: str) -> list[dict]:
        """Load a dataset's dicts. An unknown name or an empty dataset is a DataError."""
        if name not in self._loaders:
            raise _unknown(name, list(self._loaders))
        dicts = self._loaders[name]()
        if not isinstance(dicts, list):
            raise DataError(f"dataset '{name}': the loader returned {type(dicts).__name__}, expected a list")
        if not dicts:
            raise DataError(f"dataset '{name}' is empty: its loader found no images")
        return dicts

    def list(self) -> list[str]:
        return sorted(self._loaders)

    def remove(self, name: str) -> None:
        self._loaders.pop(name, None)

    def __contains__(self, name: str) -> bool:
        return name in self._loaders


class _MetadataCatalog:
    """name -> Metadata."""

    def __init__(self) -> None:
        self._metadata: dict[str, Metadata] = {}

    def set(self, name: str, metadata: Metadata) -> None:
        metadata.name = name
        self._metadata[name] = metadata

    def get(self, name: str) -> Metadata:
        if name not in self._metadata:
            raise _unknown(name, list(self._metadata))
        return self._metadata[name]

    def remove(self, name: str) -> None:
        self._metadata.pop(name, None)

    def __contains__(self, name: str) -> bool:
        return name in self._metadata


DatasetCatalog = _DatasetCatalog()
MetadataCatalog = _MetadataCatalog()


def register_dataset(name: str, loader: Callable[[], list[dict]], metadata: Metadata) -> None:
    """Register a dataset under `name`: its loader (called lazily) and its metadata."""
    DatasetCatalog.register(name, loader)
    MetadataCatalog.set(name, metadata)


def get_dataset_dicts(names: list[str] | tuple[str, ...] | str) -> list[dict]:
    """Dataset dicts of one or several registered datasets, concatenated."""
    if isinstance(names, str):
        names = [names]
    if not names:
        raise DataError("no dataset named (DATASETS.TRAIN / DATASETS.TEST is empty)")
    dicts: list[dict] = []
    for name in names:
        dicts.extend(DatasetCatalog.get(name))
    return dicts
