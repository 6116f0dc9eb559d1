"""tools/train_net.py as a user runs it: --eval-only, SIGTERM, and 2-process CPU runs (an error
or a SIGTERM on one rank stops both at the same iteration)."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from itertools import islice

from segdet.checkpoint import load_checkpoint_file
from segdet.data.samplers import TrainingSampler
from tests.engine.cli import TRAIN_NET, error_lines, run_tool, start_training, write_bad_input
from tests.engine.conftest import read_metrics, write_tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_train_net(args, timeout=600):
    return subprocess.run([sys.executable, TRAIN_NET] + args, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _training_images(root):
    """The tiny fruit training images in dataset order (coco_semantic sorts by image id)."""
    with open(os.path.join(root, "annotations", "instances_train.json")) as f:
        images = sorted(json.load(f)["images"], key=lambda im: im["id"])
    return [os.path.join(root, "images", "train", im["file_name"]) for im in images]


def test_two_process_cpu_run_and_eval_only(tiny_fruit_root, tmp_path):
    # A copy of the dataset with one bad training image that only rank 1 draws in 3 iterations
    # (rank r takes stream positions r, r + 2, ...): rank 0 must still count it.
    root = tmp_path / "data"
    shutil.copytree(tiny_fruit_root, root)
    stream = list(islice(iter(TrainingSampler(4, seed=3, rank=0, world_size=1)), 6))
    bad = stream[1]
    assert bad not in stream[0::2]
    draws = stream[1::2].count(bad)
    with open(_training_images(str(root))[bad], "wb") as f:
        f.write(b"garbage")
    out = tmp_path / "out"
    cfg = write_tiny_config(tmp_path / "cfg.yaml", str(root), str(out), mask_on=False)
    proc = run_train_net(["--config-file", cfg, "--num-gpus", "2", "SOLVER.MAX_ITER", "3",
                          "DATALOADER.CHECK_DATASET", "False", "DATALOADER.SKIP_BAD_SAMPLES", "True"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Rank 1 of 2" in open(out / "log.txt.rank1").read()
    assert (out / "model_final.pth").is_file()
    assert not any(name.startswith("metrics.json.") for name in os.listdir(out))  # rank 0 alone writes
    assert [r["skipped_training_samples"] for r in read_metrics(out) if "skipped_training_samples" in r] == [1]
    assert f"1 training samples were left out: 0 by the dataset check, 1 found bad while loading (drawn {draws} " \
        "times)" in proc.stdout
    results = json.load(open(out / "inference" / "tiny_val" / "results.json"))
    # Both ranks' images are counted: the val split has 2 images of 64x64, minus ignore pixels.
    conf = results["sem_seg"]["pixel_confusion_matrix"]
    counted = sum(map(sum, conf))
    assert 0.8 * 2 * 64 * 64 < counted <= 2 * 64 * 64

    eval_out = tmp_path / "eval"
    proc = run_train_net(["--config-file", cfg, "--eval-only", "MODEL.WEIGHTS", str(out / "model_final.pth"),
                          "OUTPUT_DIR", str(eval_out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.load(open(eval_out / "inference" / "tiny_val" / "results.json"))
    assert again["sem_seg"]["pixel_confusion_matrix"] == conf


def test_sigterm_saves_a_checkpoint_and_resume_finishes(tiny_fruit_root, tmp_path):
    out = tmp_path / "out"
    cfg = write_tiny_config(tmp_path / "cfg.yaml", tiny_fruit_root, str(out), mask_on=False, test=())
    # A loader worker process too: the signal goes to the whole process group, as from a terminal.
    proc = start_training(["--config-file", cfg, "SOLVER.MAX_ITER", "100000", "SOLVER.CHECKPOINT_PERIOD", "100000",
                           "DATALOADER.NUM_WORKERS", "1"], out / "log.txt")
    time.sleep(3)  # a few iterations
    os.killpg(proc.pid, signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output[-3000:]
    assert "SIGTERM received" in output and "Traceback" not in output
    saved = open(out / "last_checkpoint").read()
    assert saved.startswith("model_") and (out / saved).is_file()
    done = int(saved[len("model_"):-len(".pth")]) + 1
    proc = run_train_net(["--config-file", cfg, "--resume", "SOLVER.MAX_ITER", str(done + 2)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Resuming at iteration {done + 1}" in proc.stdout
    assert (out / "model_final.pth").is_file()


def test_bad_config_key_is_one_clear_line(tmp_path):
    proc = run_train_net(["--config-file", os.path.join(ROOT, "configs", "demo", "quickstart.yaml"),
                          "SOLVER.BASE_RL", "0.1"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: command line: unknown config key 'SOLVER.BASE_RL' (did you mean 'SOLVER.BASE_LR'?)"]


def _stop_lines(log_file):
    return re.findall(r"Training stopped at iteration (\d+): (.*)", open(log_file).read())


def test_an_error_on_one_rank_stops_both_and_prints_one_line(tmp_path):
    # The bad image is rank 1's in iteration 2 (stream position 3): iteration 1 completes on both.
    bad = int(TrainingSampler(4, seed=3, rank=0, world_size=1).epoch_order(0)[3])
    config = write_bad_input(tmp_path, "cut_in_half", bad=bad)
    run = run_tool(["--config-file", config, "--num-gpus", "2", "DATALOADER.CHECK_DATASET", "False",
                    "DATALOADER.NUM_WORKERS", "1", "SOLVER.MAX_ITER", "1000"], timeout=180)
    assert not run.timed_out and run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
    lines = error_lines(run)
    assert len(lines) == 1 and lines[0].startswith(f"error: image {tmp_path / 'images' / f'im{bad}.png'} is corrupt")
    assert "Traceback" not in run.stdout + run.stderr
    out = tmp_path / "out"
    assert _stop_lines(out / "log.txt") == [("2", "process 1 failed to load its batch; every process stops here")]
    assert (out / "last_checkpoint").read_text() == "model_0000000.pth"
    assert load_checkpoint_file(str(out / "model_0000000.pth"))["iteration"] == 0


def test_sigterm_to_one_rank_stops_both_at_the_same_iteration(tiny_fruit_root, tmp_path):
    out = tmp_path / "out"
    cfg = write_tiny_config(tmp_path / "cfg.yaml", tiny_fruit_root, str(out), mask_on=False, test=())
    log1 = out / "log.txt.rank1"
    proc = start_training(["--config-file", cfg, "--num-gpus", "2", "SOLVER.MAX_ITER", "100000",
                           "SOLVER.CHECKPOINT_PERIOD", "100000"], log1)
    try:
        rank1_pid = int(re.search(r"Rank 1 of 2 \(pid (\d+)\)", log1.read_text()).group(1))
        time.sleep(2)  # a few iterations
        os.kill(rank1_pid, signal.SIGTERM)
        sent = time.time()
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output[-3000:]
    assert time.time() - sent < 60 and "Traceback" not in output
    stops = [_stop_lines(out / "log.txt"), _stop_lines(log1)]
    assert len(stops[0]) == 1 and stops[0] == stops[1], stops
    stopped_at = int(stops[0][0][0])
    assert stops[0][0][1] == "SIGTERM received by process 1"
    assert (out / "last_checkpoint").read_text() == f"model_{stopped_at - 2:07d}.pth"
    assert load_checkpoint_file(str(out / f"model_{stopped_at - 2:07d}.pth"))["iteration"] == stopped_at - 2
