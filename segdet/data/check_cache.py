"""What the dataset check learnt about each file, kept between runs.

One JSON file per dataset, `<cache dir>/dataset_check/<dataset>.json`, holds each file's facts
(its size in pixels, its class pixel counts, or why it cannot be read) under the file's path,
size and modification time, and what it was read as: "image", or "label:<encoding>" (the
label format, values and colors it was decoded with, so that a changed classes file reads
the labels again). A file whose size or modification time changed is read again.

The cache folder is $SEGDET_CACHE, else ~/.cache/segdet.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from typing import Any, Optional

from segdet.structures.metadata import Metadata
from segdet.utils.files import write_json

logger = logging.getLogger(__name__)

_VERSION = 1


def default_cache_dir() -> str:
    """$SEGDET_CACHE, else ~/.cache/segdet."""
    return os.environ.get("SEGDET_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "segdet")


def label_kind(metadata: Metadata) -> str:
    """What label files are read as: "label:" + a digest of the encoding that decodes them."""
    encoding = {
        "format": metadata.label_format,
        "values": list(metadata.label_values or range(metadata.num_classes)),
        "colors": [list(c) for c in metadata.class_colors] if metadata.label_format == "rgb" else None,
        "things": list(metadata.thing_class_ids[:1]) if metadata.label_format == "instance_ids" else None,
    }
    digest = hashlib.sha1(json.dumps(encoding, sort_keys=True).encode()).hexdigest()[:12]
    return f"label:{digest}"


def file_stamp(path: str) -> Optional[tuple[int, int]]:
    """(size in bytes, modification time in ns) of a file; None when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class FileFactsCache:
    """Facts per (kind, file), valid while the file's size and modification time are unchanged.

    Usage:
        cache = FileFactsCache.for_dataset("camvid_train")
        facts = cache.get("image", path, stamp)      # None: read the file
        cache.put("image", path, stamp, facts)
        cache.save()   # keeps the entries used since loading, drops the others
    """

    def __init__(self, path: Optional[str]):
        self.path = path
        self._entries: dict[str, dict[str, dict[str, Any]]] = {}
        self._used: dict[str, dict[str, dict[str, Any]]] = {}
        if path and os.path.isfile(path):
            self._entries = self._read(path)

    @classmethod
    def for_dataset(cls, name: str, cache_dir: Optional[str] = None) -> "FileFactsCache":
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "dataset"
        return cls(os.path.join(cache_dir or default_cache_dir(), "dataset_check", f"{safe}.json"))

    @staticmethod
    def _read(path: str) -> dict[str, dict[str, dict[str, Any]]]:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            logger.warning("dataset check cache %s is unreadable (%s); the files are read again", path, e)
            return {}
        if not isinstance(data, dict) or data.get("version") != _VERSION or not isinstance(data.get("files"), dict):
            return {}
        return data["files"]

    def get(self, kind: str, path: str, stamp: tuple[int, int]) -> Optional[dict[str, Any]]:
        entry = self._entries.get(kind, {}).get(path)
        if not entry or (entry.get("size"), entry.get("mtime_ns")) != tuple(stamp):
            return None
        self._used.setdefault(kind, {})[path] = entry
        return entry["facts"]

    def put(self, kind: str, path: str, stamp: tuple[int, int], facts: dict[str, Any]) -> None:
        self._used.setdefault(kind, {})[path] = {"size": stamp[0], "mtime_ns": stamp[1], "facts": facts}

    def save(self) -> None:
        """Write the entries used since loading (atomically); a cache that cannot be written is
        a warning, not an error: the check only gets slower."""
        if not self.path:
            return
        try:
            write_json({"version": _VERSION, "files": self._used}, self.path, indent=None)
        except OSError as e:
            logger.warning("cannot write the dataset check cache %s (%s); the next check reads every file", self.path, e)
