import json
import os

import pytest

from segdet.errors import DataError
from segdet.utils.files import atomic_write, atomic_write_text, files_by_stem, is_temp_file, write_json


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "result.json")
    atomic_write_text("old", path)

    def fails(tmp):
        with open(tmp, "w") as f:
            f.write("half of the new")
        raise KeyboardInterrupt  # a Ctrl-C in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fails)
    assert open(path).read() == "old"
    assert os.listdir(tmp_path) == ["result.json"]


def test_temporary_names_keep_the_extension_and_are_hidden(tmp_path):
    seen = []
    atomic_write(str(tmp_path / "picture.png"), lambda tmp: (seen.append(tmp), open(tmp, "wb").close()))
    name = os.path.basename(seen[0])
    assert name.startswith(".picture") and name.endswith(".png") and is_temp_file(name)
    assert not is_temp_file("picture.png")


def test_json_values_are_plain(tmp_path):
    import numpy as np

    path = write_json({"a": np.float32(0.5), "b": float("nan"), "c": (np.int64(3),), "d": np.arange(2)},
                      str(tmp_path / "sub" / "x.json"))
    assert json.loads(open(path).read()) == {"a": 0.5, "b": None, "c": [3], "d": [0, 1]}


def test_files_by_stem_refuses_two_files_of_one_name(tmp_path):
    for name in ("a.png", "b.jpg", "notes.txt", ".a.tmp-1.png"):
        (tmp_path / name).write_bytes(b"")
    assert files_by_stem(str(tmp_path), (".png", ".jpg")) == {"a": str(tmp_path / "a.png"),
                                                            "b": str(tmp_path / "b.jpg")}
    (tmp_path / "a.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="same name 'a'"):
        files_by_stem(str(tmp_path), (".png", ".jpg"), "image")


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path):
    import subprocess
    import sys

    from segdet.utils.files import remove_stale_temp_files, temp_path

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    sub = tmp_path / "inference" / "val"
    sub.mkdir(parents=True)
    stale = [str(tmp_path / f".model_0000009.tmp-{dead.pid}-0a1b2c3d.pth"),
             str(sub / f".results.tmp-{dead.pid}-00000000.json")]
    alive = str(tmp_path / f".last_checkpoint.tmp-{os.getppid()}-12345678")  # a running writer
    mine = temp_path(str(tmp_path / "metrics.json"))  # this process is writing it
    for path in stale + [alive, mine]:
        open(path, "w").close()
    (tmp_path / ".hidden").write_text("not a temporary file")
    assert sorted(remove_stale_temp_files(str(tmp_path))) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == sorted([".hidden", "inference", os.path.basename(alive),
                                                   os.path.basename(mine)])
