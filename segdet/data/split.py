"""Split a dataset's images into train/val/test, and keep a split in a JSON file.

A split file is ``{"train": [image ids], "val": [...], "test": [...], "seed": s}``:
any number of named splits, each a list of the image ids (dataset dict `image_id`)
that belong to it, and the seed that made it. Every loader takes
``split_file``/``split`` and keeps only that split's images (`apply_split`).
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
from collections import Counter
from typing import Iterable, Optional

from segdet.errors import DataError
from segdet.utils.files import write_json

logger = logging.getLogger(__name__)

_SEED_KEY = "seed"


def _split_sizes(n: int, fractions: list[float]) -> list[int]:
    """Sizes by rounding; the first split takes the remainder; non-zero fractions get >= 1 id."""
    sizes = [0] + [int(math.floor(f * n + 0.5)) for f in fractions[1:]]
    enough = n >= sum(1 for f in fractions if f > 0)
    minimum = [1 if (f > 0 and enough) else 0 for f in fractions]
    sizes = [max(s, m) for s, m in zip(sizes, minimum)]
    sizes[0] = n - sum(sizes[1:])
    # Rounding up several small splits can leave the first one short (even negative):
    # take ids back from the split rounded up the most (ties: the earlier split).
    while sizes[0] < minimum[0]:
        spare = [i for i in range(1, len(sizes)) if sizes[i] > minimum[i]]
        largest = max(spare, key=lambda i: (sizes[i] - fractions[i] * n, sizes[i]))
        sizes[largest] -= 1
        sizes[0] += 1
    if sizes[0] > 0 and fractions[0] == 0:
        # The remainder goes to the first split unless it asked for nothing.
        target = max(range(len(fractions)), key=lambda i: fractions[i])
        sizes[target] += sizes[0]
        sizes[0] = 0
    return sizes


def split_image_ids(image_ids: Iterable[str], fractions: dict[str, float], seed: int = 0) -> dict[str, list[str]]:
    """Shuffle image ids with a seed and cut them into named splits.

    The result depends only on the set of ids, the fractions and the seed (ids are
    sorted before shuffling). Sizes are the rounded fractions; the first split
    takes the remainder; every split with a non-zero fraction gets at least one id
    when there are enough ids.

    Args:
        image_ids: unique image ids.
        fractions: split name -> fraction, in order; they must sum to 1.
        seed: seed of the shuffle.
    Returns:
        split name -> sorted list of ids; every id is in exactly one split.
    """
    ids = [str(i) for i in image_ids]
    if not ids:
        raise DataError("cannot split: there are no image ids")
    if len(set(ids)) != len(ids):
        dupes = sorted(i for i, c in Counter(ids).items() if c > 1)[:10]
        raise DataError(f"cannot split: image ids are not unique: {dupes}")
    if not fractions:
        raise DataError("cannot split: no split fractions given")
    names = list(fractions)
    values = []
    for name in names:
        try:
            value = float(fractions[name])
        except (TypeError, ValueError):
            raise DataError(f"split fraction of '{name}' is not a number: {fractions[name]!r}") from None
        if not 0.0 <= value <= 1.0 or math.isnan(value):
            raise DataError(f"split fraction of '{name}' is {value}; expected a number in [0, 1]")
        values.append(value)
    total = sum(values)
    if abs(total - 1.0) > 1e-6:
        raise DataError(f"split fractions {dict(zip(names, values))} sum to {total}; they must sum to 1")
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    splits: dict[str, list[str]] = {}
    start = 0
    for name, size in zip(names, _split_sizes(len(order), values)):
        splits[name] = sorted(order[start:start + size])
        start += size
    return splits


def _check_disjoint(splits: dict[str, list[str]], where: str) -> None:
    owner: dict[str, str] = {}
    for name, ids in splits.items():
        for image_id in ids:
            if image_id in owner:
                if owner[image_id] == name:
                    raise DataError(f"{where}: image id '{image_id}' is listed twice in split '{name}'")
                raise DataError(
                    f"{where}: image id '{image_id}' is in two splits, '{owner[image_id]}' and '{name}'"
                )
            owner[image_id] = name


def write_split_file(path: str, splits: dict[str, list[str]], seed: Optional[int] = None) -> None:
    """Write a split file atomically (a temp file in the same folder, then a rename).

    Args:
        path: the JSON file to write.
        splits: split name -> image ids; an id may be in one split only.
        seed: the seed that made the split, stored under "seed" (None: not stored).
    """
    if _SEED_KEY in splits:
        raise DataError(f"split file {path}: '{_SEED_KEY}' cannot be a split name")
    clean = {str(name): [str(i) for i in ids] for name, ids in splits.items()}
    _check_disjoint(clean, f"split file {path}")
    content: dict = dict(clean)
    if seed is not None:
        content[_SEED_KEY] = seed
    write_json(content, path, indent=1)


def read_split_file(path: str) -> dict[str, list[str]]:
    """Read a split file.

    Returns:
        split name -> list of image ids (the "seed" entry is left out).
    """
    if not os.path.isfile(path):
        raise DataError(f"split file not found: {path}")
    try:
        with open(path) as f:
            raw = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"split file {path} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise DataError(f"split file {path}: expected an object {{split name: [image ids]}}, got {type(raw).__name__}")
    splits: dict[str, list[str]] = {}
    for name, ids in raw.items():
        if name == _SEED_KEY:
            continue
        if not isinstance(ids, list) or not all(isinstance(i, (str, int)) for i in ids):
            raise DataError(f"split file {path}: split '{name}' must be a list of image ids")
        splits[name] = [str(i) for i in ids]
    if not splits:
        raise DataError(f"split file {path} holds no splits")
    _check_disjoint(splits, f"split file {path}")
    return splits


def apply_split(dataset_dicts: list[dict], split_file: Optional[str], split: Optional[str]) -> list[dict]:
    """Keep the dataset dicts whose `image_id` is in one split of a split file.

    Args:
        dataset_dicts: the whole dataset.
        split_file: a split file, or None to keep everything (then `split` must be None too).
        split: the split's name.
    Returns:
        The kept dicts, in their original order.
    """
    if split_file is None and split is None:
        return dataset_dicts
    if split_file is None or split is None:
        raise DataError(
            f"a split needs both a split file and a split name; got split_file={split_file!r}, split={split!r}"
        )
    splits = read_split_file(split_file)
    if split not in splits:
        raise DataError(f"split file {split_file} has no split '{split}'; its splits: {sorted(splits)}")
    wanted = set(splits[split])
    kept = [d for d in dataset_dicts if str(d["image_id"]) in wanted]
    missing = len(wanted) - len({str(d["image_id"]) for d in kept})
    if missing:
        logger.warning(
            "split file %s: %d image id(s) of split '%s' are not in the dataset; they are skipped",
            split_file, missing, split,
        )
    return kept
