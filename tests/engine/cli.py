"""Running tools/train_net.py (and the other tools) as a user does, several at once, each under
a timeout that fails the test instead of hanging it; and small image_folder datasets with one
bad file of a given kind."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
TRAIN_NET = str(ROOT / "tools" / "train_net.py")

SIZE = 64  # image side


def load_tool(name: str):
    """tools/<name>.py as a module, to call its main() in this process (saves the start-up)."""
    spec = importlib.util.spec_from_file_location(f"{name}_tool", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_training(args: Sequence[str], log: Path, timeout: float = 300) -> subprocess.Popen:
    """Start tools/train_net.py in a session of its own (a signal to its group reaches it as from
    a terminal) and wait until `log` says that training began."""
    proc = subprocess.Popen([sys.executable, TRAIN_NET, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and not (log.is_file() and re.search(r"Training \d+ iterations", log.read_text())):
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    return proc


@dataclass
class Run:
    returncode: Optional[int]  # None: killed at the timeout
    stdout: str
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_tool(args: Sequence[str], timeout: float = 120, tool: str = TRAIN_NET) -> Run:
    """Run a tool in its own process group; at the timeout the whole group is killed (so a hung
    run and its loader workers do not outlive the test) and `returncode` is None."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, tool, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        code: Optional[int] = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    return Run(code, out, err, time.monotonic() - start)


def run_tools(commands: Sequence[Sequence[str]], timeout: float = 120, parallel: int = 3) -> list[Run]:
    """run_tool of each argument list, `parallel` at a time (most of a run is its start-up)."""
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda args: run_tool(args, timeout), commands))


CONFIG = """
MODEL:
  DEVICE: cpu
  META_ARCHITECTURE: SemanticSegmentor
  MASK_ON: False
  RESNETS: {{DEPTH: 18}}
  FPN: {{OUT_CHANNELS: 32}}
  SEM_SEG_HEAD: {{NUM_CLASSES: 3, CONVS_DIM: 32}}
DATASETS:
  TRAIN: ("{name}",)
  TEST: ()
  CUSTOM:
    {name}: {{FORMAT: image_folder, IMAGE_DIR: {root}/images, LABEL_DIR: {root}/labels,
             CLASSES_FILE: {root}/classes.json}}
DATALOADER: {{NUM_WORKERS: 0}}
SOLVER: {{OPTIMIZER: ADAMW, BASE_LR: 0.001, IMS_PER_BATCH: 2, MAX_ITER: 2, WARMUP_ITERS: 1, STEPS: (), CHECKPOINT_PERIOD: 100}}
SEED: 3
OUTPUT_DIR: {root}/out
"""


def write_bad_input(root: Path, kind: str, bad: int = 2, num_images: int = 4) -> str:
    """An image_folder dataset of `num_images` 64x64 images (classes 0-2) with one bad input of
    `kind` at image `bad` (see BAD_KINDS), and its config; returns the config file."""
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    rng = np.random.default_rng(0)
    for i in range(num_images if kind != "empty_dataset" else 0):
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(images / f"im{i}.png")
        Image.fromarray(rng.integers(0, 3, (SIZE, SIZE)).astype(np.uint8)).save(labels / f"im{i}.png")
    image, label = images / f"im{bad}.png", labels / f"im{bad}.png"
    if kind == "corrupt_header":
        image.write_bytes(b"\x00\x01 not an image at all \xff" * 8)
    elif kind == "cut_in_half":
        data = image.read_bytes()
        image.write_bytes(data[:len(data) // 2])
    elif kind == "missing_label":
        label.unlink()
    elif kind == "size_mismatch":
        Image.fromarray(np.zeros((SIZE, SIZE - 8), np.uint8)).save(label)
    elif kind == "gray_image":
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8), mode="L").save(image)
    elif kind == "label_value_7":
        values = np.array(Image.open(label))
        values[5, 6] = 7
        Image.fromarray(values).save(label)
    elif kind == "label_16bit_300":
        values = np.array(Image.open(label)).astype(np.uint16)
        values[5, 6] = 300
        Image.fromarray(values).save(label)
    (root / "classes.json").write_text(json.dumps({"classes": [{"id": i, "name": n} for i, n in
                                                               enumerate(["background", "part", "defect"])]}))
    config = root / "cfg.yaml"
    config.write_text(CONFIG.format(name=f"bad_{kind}_{root.name}", root=root))
    return str(config)


def error_lines(run: Run) -> list[str]:
    return run.stderr.strip().splitlines()
