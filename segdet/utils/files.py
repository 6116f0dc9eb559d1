"""Files written so that a crash never leaves half of one, and files found by name.

`atomic_write(path, write)` is the one way segdet writes a file it keeps (model files,
results, pictures, label files, JSON): `write` fills a temporary file in the same folder
(hidden, with the same extension, so that writers that go by the extension still work),
which is flushed to disk and renamed over `path`; the folder is synced so that the rename
survives a power loss. On any error the temporary file is removed and `path` is untouched.
"""
from __future__ import annotations

import json
import math
import os
import uuid
from typing import Any, Callable, Iterable, Optional

import numpy as np

from segdet.errors import DataError

TEMP_MARK = ".tmp-"


def temp_path(path: str) -> str:
    """A hidden temporary name next to `path`, with its extension: `.<name>.tmp-<id><ext>`."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}{ext}")


def is_temp_file(name: str) -> bool:
    """Whether a file name is one of `temp_path`'s (left behind by a killed process)."""
    return name.startswith(".") and TEMP_MARK in name


def _writer_pid(name: str) -> Optional[int]:
    pid = name.partition(TEMP_MARK)[2].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temp_files(folder: str) -> list[str]:
    """Remove the temporary files a killed process left below `folder` (see `temp_path`): those
    whose writing process is no longer running. Returns the paths removed."""
    removed = []
    for root, _, names in os.walk(folder):
        for name in names:
            pid = _writer_pid(name) if is_temp_file(name) else None
            if pid is None or pid == os.getpid() or _is_running(pid):
                continue
            path = os.path.join(root, name)
            try:
                os.remove(path)
            except OSError:
                continue
            removed.append(path)
    return removed


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on every platform (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[str], Any]) -> str:
    """Write `path` all or nothing: `write(tmp)` writes a temporary file that then replaces `path`.

    Returns:
        `path`.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        if not os.path.isfile(tmp):
            raise DataError(f"cannot write {path}: the writer produced no file")
        _fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    _fsync_folder(folder)
    return path


def atomic_write_bytes(data: bytes, path: str) -> str:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write(path, write)


def atomic_write_text(text: str, path: str) -> str:
    return atomic_write_bytes(text.encode("utf-8"), path)


def json_ready(value: Any) -> Any:
    """Plain JSON values: numpy numbers and arrays converted, tuples as lists, NaN as None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        # Strict JSON has no NaN: write null.
        return None if math.isnan(float(value)) else float(value)
    return value


def write_json(data: Any, path: str, indent: Optional[int] = 2) -> str:
    """Write JSON atomically; numpy values are converted, NaN becomes null. Returns the path."""
    text = json.dumps(json_ready(data), indent=indent)
    return atomic_write_text(text + "\n", path)


def files_by_stem(folder: str, extensions: Iterable[str], what: str = "image") -> dict[str, str]:
    """The files of a folder (not its subfolders) by file stem, for files with one of `extensions`.

    Hidden files (and so temporary files) are left out. Two files with the same stem are a
    DataError naming both: files are matched by name, so which one was meant is unknown.

    Args:
        folder: the folder.
        extensions: lower-case extensions with the dot, e.g. `image_io.IMAGE_EXTENSIONS`.
        what: what the files are, for messages ("image", "label file", "prediction").
    Returns:
        stem -> path, sorted by file name.
    """
    if not os.path.isdir(folder):
        raise DataError(f"{what} folder not found: {folder}")
    extensions = tuple(extensions)
    found: dict[str, str] = {}
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        stem, ext = os.path.splitext(entry)
        if entry.startswith(".") or ext.lower() not in extensions or not os.path.isfile(path):
            continue
        if stem in found:
            raise DataError(
                f"two {what} files with the same name '{stem}': {found[stem]} and {path}; "
                "files are matched by name, so keep one of them"
            )
        found[stem] = path
    return found
