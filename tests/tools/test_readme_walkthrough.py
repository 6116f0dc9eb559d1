"""The README's walk-through ("## Use": train, evaluate, predict, score, report, export) runs as
written, in a fresh folder, with a few training iterations instead of the recipe's 450."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
# The only change to the README's commands: training stops after a few iterations.
SHORT_TRAINING = ["SOLVER.MAX_ITER", "3", "SOLVER.WARMUP_ITERS", "1", "SOLVER.CHECKPOINT_PERIOD", "3",
                  "TEST.EVAL_PERIOD", "0", "DATALOADER.NUM_WORKERS", "0"]


def walkthrough_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- walkthrough:.*?-->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no walk-through block"
    commands = [shlex.split(line) for line in block.group(1).splitlines()
                if line.strip() and not line.lstrip().startswith(("#", ". "))]
    assert all(c[0] == "python" and c[1].startswith("tools/") for c in commands), commands
    return commands


def test_the_readme_walkthrough_runs_as_written(tmp_path):
    commands = walkthrough_commands()
    assert [c[1] for c in commands] == ["tools/train_net.py", "tools/train_net.py", "tools/predict.py",
                                        "tools/eval_predictions.py", "tools/report.py", "tools/export_model.py"]
    # A fresh folder as a user's clone: the tools and configs, and an empty datasets/ (the demo
    # dataset is generated on first use).
    for name in ("tools", "configs"):
        os.symlink(ROOT / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k != "SEGDET_DATASETS"}
    env["OMP_NUM_THREADS"] = "1"
    for k, command in enumerate(commands):
        argv = [sys.executable, *command[1:]] + (SHORT_TRAINING if k == 0 else [])
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{' '.join(command)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    run = tmp_path / "output" / "run1"
    for name in ("model_final.pth", "metrics.json", "config.yaml", "pred/segdet_predictions.json",
                 "report.html", "model.onnx", "model.onnx.json"):
        assert (run / name).is_file(), name
    evaluated = json.loads((run / "inference" / "demo_fruit_test" / "results.json").read_text())["sem_seg"]
    scored = json.loads((run / "pred_eval.json").read_text())["sem_seg"]
    # The model's own evaluation and the score of its written predictions agree to the pixel.
    assert scored["pixel_confusion_matrix"] == evaluated["pixel_confusion_matrix"]
    assert len(json.loads((run / "pred_eval.json").read_text())["sem_seg_per_image"]) == 18
    assert f"{evaluated['mean_iou']:.4f}" in (run / "report.html").read_text()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:  # the demo's report as a browser renders it (Debian's chromium; CI has none)
        dom = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom",
                              (run / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
        assert dom.returncode == 0 and f"{evaluated['mean_iou']:.4f}" in dom.stdout
        assert "demo_fruit_test" in dom.stdout and dom.stdout.count("<img") >= 3
