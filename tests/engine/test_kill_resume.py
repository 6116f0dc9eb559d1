"""bench/kill_resume.py in short: a tiny training killed with kill -9 three times at random
moments, resumed after each, ends at MAX_ITER with loadable checkpoints, a metrics.json that
parses, no temporary files, and its best model kept."""
import json
import subprocess
import sys

from tests.engine.cli import ROOT
from tests.engine.conftest import write_tiny_config


def test_three_kills_and_resumes_end_as_one_run(tiny_fruit_root, tmp_path):
    out, report = tmp_path / "out", tmp_path / "report.json"
    cfg = write_tiny_config(tmp_path / "cfg.yaml", tiny_fruit_root, str(out), mask_on=False)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "kill_resume.py"), "--config-file", cfg, "--kills", "3",
         "--first-window", "8", "--seed", "1", "--output-dir", str(out), "--report", str(report),
         "SOLVER.MAX_ITER", "12", "SOLVER.CHECKPOINT_PERIOD", "2", "TEST.EVAL_PERIOD", "4",
         "SOLVER.BEST_CHECKPOINT_METRIC", "sem_seg/mean_iou", "DATALOADER.NUM_WORKERS", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    results = json.loads(report.read_text())["results"]
    assert len(results["starts"]) == 4 and results["starts"][-1]["exit"] == 0
    checks = {c["check"]: c["ok"] for c in results["checks"]}
    assert checks == {name: True for name in [
        "the last start ended normally", "every resume continued from the newest loadable checkpoint",
        "ended at MAX_ITER", "every model file loads", "metrics.json parses", "each iteration recorded once",
        "a record of every checkpointed iteration", "no temporary files", "every evaluation recorded",
        "best model kept"]}
