"""tools/train_net.py as a user runs it: --eval-only, SIGTERM, and a 2-process CPU run."""
import json
import os
import signal
import subprocess
import sys
import time


from tests.engine.conftest import write_tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_NET = os.path.join(ROOT, "tools", "train_net.py")


def run_train_net(args, timeout=600):
    return subprocess.run([sys.executable, TRAIN_NET] + args, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_two_process_cpu_run_and_eval_only(tiny_fruit_root, tmp_path):
    out = tmp_path / "out"
    cfg = write_tiny_config(tmp_path / "cfg.yaml", tiny_fruit_root, str(out), mask_on=False)
    proc = run_train_net(["--config-file", cfg, "--num-gpus", "2", "SOLVER.MAX_ITER", "3"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Rank 1 of 2" in open(out / "log.txt.rank1").read()
    assert (out / "model_final.pth").is_file()
    assert not any(name.startswith("metrics.json.") for name in os.listdir(out))  # rank 0 alone writes
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
    proc = subprocess.Popen([sys.executable, TRAIN_NET, "--config-file", cfg, "SOLVER.MAX_ITER", "100000",
                             "SOLVER.CHECKPOINT_PERIOD", "100000", "DATALOADER.NUM_WORKERS", "1"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 300
    log = out / "log.txt"
    while time.time() < deadline and not (log.is_file() and "Training 100000 iterations" in log.read_text()):
        time.sleep(0.5)
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
