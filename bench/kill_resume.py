#!/usr/bin/env python
"""kill -9 and --resume: a training killed at random moments continues each time, and ends as if
it had never been killed.

A demo-sized training (default: the quickstart config, 80 iterations, a checkpoint every 5,
an evaluation on demo_fruit_val every 20 that keeps model_best.pth) is started with tools/train_net.py and
killed with SIGKILL at a random moment (`KillClock`: of its training, within about three
checkpoint periods as measured on this machine, or one time in five of its start-up; a
step, a save, an evaluation: wherever it is); then it is started again with --resume, and
killed again, --kills times; the last start runs to the end. So that the run cannot end before its last kill on a fast
machine, a start is also killed as soon as it has saved MAX_ITER / (kills + 1) iterations
more than it started from ("progress cap" in the table). Checked at the end:
  - every resume continued from the newest checkpoint that loads (what the folder held before it);
  - the run ended at SOLVER.MAX_ITER (model_final.pth, iteration MAX_ITER - 1);
  - every model file in OUTPUT_DIR loads with torch.load(weights_only=True);
  - every line of metrics.json parses, each training iteration is recorded once, and every
    checkpointed iteration is recorded (its record is written before its checkpoint);
  - no temporary file is left anywhere in OUTPUT_DIR;
  - every evaluation due (TEST.EVAL_PERIOD, and the last) is in metrics.json, model_best.pth
    is the model best_metric.json names, and no evaluation logged was better.

    .venv/bin/python bench/kill_resume.py [--kills 10] [--seed 0] [--first-window 40]
        [--config-file CFG] [--output-dir DIR] [--report FILE] [KEY VALUE ...]

Exit status 0 when every check passes, 1 otherwise (a table says which).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

CONFIG = os.path.join(common.REPO_ROOT, "configs", "demo", "quickstart.yaml")
TRAIN_NET = os.path.join(common.REPO_ROOT, "tools", "train_net.py")
DEMO_OVERRIDES = ["SOLVER.MAX_ITER", "80", "SOLVER.CHECKPOINT_PERIOD", "5", "TEST.EVAL_PERIOD", "20",
                  "SOLVER.BEST_CHECKPOINT_METRIC", "sem_seg/mean_iou", "DATASETS.TEST", "('demo_fruit_val',)"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", default=CONFIG, help="training config (default the quickstart)")
    p.add_argument("--kills", type=int, default=10, help="kill -9 this many times (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random kill moments")
    p.add_argument("--first-window", type=float, default=40.0, metavar="S",
                   help="the first kill comes within S seconds of training (later ones: within about three "
                        "checkpoint periods, as measured; default 40)")
    p.add_argument("--output-dir", default=os.path.join(common.REPO_ROOT, "output", "kill_resume"),
                   help="OUTPUT_DIR of the training (emptied first)")
    p.add_argument("--report", default=None, help="results JSON (default bench/results/kill_resume.json)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds the last, uninterrupted start may take")
    p.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                   help="config overrides (default, for the quickstart: " + " ".join(DEMO_OVERRIDES) + ")")
    return p.parse_args()


def newest_loadable(folder: str) -> int | None:
    """The iteration --resume should continue after: the highest of the model files that load
    (model_<iteration>.pth, model_final.pth; the folder holds this run's files only)."""
    from segdet.checkpoint import load_checkpoint_file
    from segdet.errors import CheckpointError

    iterations = []
    for name in os.listdir(folder):
        if re.match(r"^model_(\d+|final)\.pth$", name):
            try:
                iterations.append(int(load_checkpoint_file(os.path.join(folder, name)).get("iteration", -1)))
            except CheckpointError:
                continue
    return max(iterations, default=None)


def newest_saved(folder: str) -> int:
    """The highest iteration of the model_<iteration>.pth files (-1: none), from their names."""
    found = [int(m.group(1)) for n in os.listdir(folder) if (m := re.match(r"^model_(\d+)\.pth$", n))]
    return max(found, default=-1)


class KillClock:
    """When to kill the next start, adapted to this machine's speed: most often a random moment
    of its training within about three checkpoint periods after training began (so that kills
    land on saves and evaluations as well as on steps), one start in five a random moment of its
    start-up (importing, indexing and checking the data, loading the checkpoint)."""

    def __init__(self, rng: random.Random, checkpoint_period: int, first_window_s: float):
        self.rng = rng
        self.period = checkpoint_period
        self.window = first_window_s  # seconds of training the moment is drawn from
        self.startup_s: float | None = None

    def draw(self) -> tuple[str, float]:
        if self.startup_s is not None and self.rng.random() < 0.2:
            return "start-up", self.rng.uniform(0, self.startup_s)
        return "training", self.rng.uniform(0, self.window)

    def learn(self, startup_s: float | None, seconds_per_iteration: float | None) -> None:
        if startup_s is not None:
            self.startup_s = startup_s
        if seconds_per_iteration is not None:
            self.window = 3 * self.period * seconds_per_iteration
        else:  # killed before its first checkpoint: look further next time
            self.window *= 1.5


def kill_when_due(proc: subprocess.Popen, folder: str, log_path: str, moment: tuple[str, float],
                  cap: int) -> tuple[int, str, float | None, float | None]:
    """SIGKILL `proc` at `moment` (seconds after its start, or after its training began), or
    once it has saved iteration `cap`. Returns (exit status, why it ended then, seconds of
    start-up, wall-clock time training began; None when it did not)."""
    kind, delay = moment
    started = time.monotonic()
    began = began_wall = None
    while proc.poll() is None:
        now = time.monotonic()
        if began is None and re.search(r"Training \d+ iterations from", open(log_path, errors="replace").read()):
            began, began_wall = now, time.time()
        since = now - started if kind == "start-up" else None if began is None else now - began
        if since is not None and since >= delay:
            reason = f"random moment of {kind}"
        elif newest_saved(folder) >= cap:
            reason = "progress cap"
        else:
            time.sleep(0.05)
            continue
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(), reason, None if began is None else began - started, began_wall
    return proc.returncode, "ended by itself", None, None


def seconds_per_iteration(folder: str, began_wall: float | None, resumed_after: int | None) -> float | None:
    """From the newest checkpoint a start wrote: (its write time - training began) / iterations."""
    newest = newest_saved(folder)
    done = newest - (resumed_after if resumed_after is not None else -1)
    if began_wall is None or done <= 0:
        return None
    written = os.stat(os.path.join(folder, f"model_{newest:07d}.pth")).st_mtime
    return max(written - began_wall, 1e-3) / done


def temp_files(folder: str) -> list[str]:
    from segdet.utils.files import is_temp_file

    return [os.path.join(root, n) for root, _, names in os.walk(folder) for n in names if is_temp_file(n)]


def torn_metrics_line(folder: str) -> bool:
    path = os.path.join(folder, "metrics.json")
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        data = f.read()
    return bool(data) and not data.endswith(b"\n")


def start(args, output_dir: str, resume: bool, log_path: str) -> subprocess.Popen:
    command = [sys.executable, TRAIN_NET, "--config-file", args.config_file] + (["--resume"] if resume else []) + \
        list(args.opts or DEMO_OVERRIDES) + ["OUTPUT_DIR", output_dir]
    log = open(log_path, "w")
    return subprocess.Popen(command, cwd=common.REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)


def resumed_at(log_path: str) -> int | None:
    """The iteration a start continued after (None: it started from the beginning)."""
    with open(log_path, errors="replace") as f:
        found = re.search(r"Resuming at iteration (\d+)", f.read())
    return int(found.group(1)) - 2 if found else None


def phase(log_path: str) -> str:
    """Where a killed start was, from its log."""
    with open(log_path, errors="replace") as f:
        text = f.read()
    if "Training " not in text or " iterations from iteration" not in text:
        return "starting"
    tail = text[text.rfind("Training "):]
    if tail.rfind("Start inference") > tail.rfind("Evaluation results"):
        return "evaluating"
    return "training"


def final_checks(folder: str, max_iter: int, period: int, eval_period: int, metric: str,
                 mode: str) -> list[tuple[str, bool, str]]:
    from segdet.checkpoint import last_checkpoint, load_checkpoint_file
    from segdet.errors import CheckpointError

    checks = []
    final = last_checkpoint(folder)
    final_iter = load_checkpoint_file(final).get("iteration") if final else None
    checks.append(("ended at MAX_ITER", final is not None and final.endswith("model_final.pth")
                   and final_iter == max_iter - 1, f"{final}: iteration {final_iter}"))
    models = sorted(n for n in os.listdir(folder) if n.endswith(".pth"))
    broken = []
    for name in models:
        try:
            load_checkpoint_file(os.path.join(folder, name))
        except CheckpointError as e:
            broken.append(f"{name}: {e}")
    checks.append(("every model file loads", not broken and bool(models), f"{len(models)} files; " + "; ".join(broken)))
    lines = open(os.path.join(folder, "metrics.json")).read().splitlines()
    bad_lines, records = [], []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            bad_lines.append(number)
    iterations = [r["iteration"] for r in records if "total_loss" in r]
    checks.append(("metrics.json parses", not bad_lines, f"{len(lines)} lines; unparsable: {bad_lines}"))
    checks.append(("each iteration recorded once", len(iterations) == len(set(iterations)),
                   f"{len(iterations)} records of {len(set(iterations))} iterations"))
    saved = {it for it in range(max_iter) if (it + 1) % period == 0 or it + 1 == max_iter}
    missing = sorted(saved - set(iterations))
    checks.append(("a record of every checkpointed iteration", not missing,
                   f"{len(saved)} checkpointed iterations; missing: {missing}"))
    left = temp_files(folder)
    checks.append(("no temporary files", not left, ", ".join(left) or "none"))
    evaluated = {r["iteration"] for r in records if metric and metric in r}
    due = {it for it in range(max_iter) if it + 1 == max_iter or (eval_period > 0 and (it + 1) % eval_period == 0)}
    if metric:
        missing = sorted(due - evaluated)
        checks.append(("every evaluation recorded", not missing, f"{len(due)} evaluations due; missing: {missing}"))
    best_file = os.path.join(folder, "best_metric.json")
    if metric and os.path.isfile(best_file):
        best = json.load(open(best_file))
        best_model_iter = load_checkpoint_file(os.path.join(folder, "model_best.pth")).get("iteration")
        logged = [r[metric] for r in records if metric in r]
        sign = 1 if mode == "max" else -1
        ok = best_model_iter == best["iteration"] and all(sign * (v - best["value"]) <= 1e-12 for v in logged)
        checks.append(("best model kept", ok, f"best {metric} {best['value']:.4f} at iteration {best['iteration'] + 1}; "
                       f"logged: {', '.join(f'{v:.4f}' for v in logged)}"))
    return checks


def main() -> int:
    args = parse_args()
    from segdet.config import load_config

    cfg = load_config(args.config_file, list(args.opts or DEMO_OVERRIDES))
    folder = os.path.abspath(args.output_dir)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    logs = os.path.join(folder + "_logs")
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)
    clock = KillClock(random.Random(args.seed), cfg.SOLVER.CHECKPOINT_PERIOD, args.first_window)
    machine = common.machine_info()
    common.print_machine(machine)
    kills, started = [], time.monotonic()
    cap = max(1, cfg.SOLVER.MAX_ITER // (args.kills + 1))
    for k in range(args.kills + 1):
        expected = newest_loadable(folder)
        log_path = os.path.join(logs, f"start_{k:02d}.log")
        proc = start(args, folder, resume=k > 0, log_path=log_path)
        if k == args.kills:
            code = proc.wait(timeout=args.timeout)
            kills.append({"start": k, "resumed_after": resumed_at(log_path), "expected": expected, "exit": code})
            break
        moment = clock.draw()
        begun = time.monotonic()
        code, reason, startup_s, began_wall = kill_when_due(proc, folder, log_path, moment,
                                                            (expected if expected is not None else -1) + cap)
        if code != -signal.SIGKILL:
            print(f"start {k} ended by itself (exit status {code}) before its kill; see {log_path}", flush=True)
            return 1
        clock.learn(startup_s, seconds_per_iteration(folder, began_wall, expected))
        kills.append({"start": k, "killed_after_s": round(time.monotonic() - begun, 2), "why": reason,
                      "phase": phase(log_path),
                      "resumed_after": resumed_at(log_path), "expected": expected,
                      "newest_after_kill": newest_loadable(folder),
                      "temp_files_left": len(temp_files(folder)), "torn_metrics_line": torn_metrics_line(folder)})
        print(f"kill {k + 1}: after {kills[-1]['killed_after_s']:.1f} s ({reason}, {kills[-1]['phase']}); "
              f"newest checkpoint now: iteration "
              f"{kills[-1]['newest_after_kill']}; temporary files left: {kills[-1]['temp_files_left']}; "
              f"metrics.json ends in a torn line: {kills[-1]['torn_metrics_line']}", flush=True)
    total = time.monotonic() - started

    last = kills[-1]
    checks = [("the last start ended normally", last["exit"] == 0, f"exit status {last['exit']}"),
              ("every resume continued from the newest loadable checkpoint",
               all(r["resumed_after"] == r["expected"] for r in kills[1:]),
               ", ".join(f"{r['resumed_after']}/{r['expected']}" for r in kills[1:]))]
    if last["exit"] == 0:
        checks += final_checks(folder, cfg.SOLVER.MAX_ITER, cfg.SOLVER.CHECKPOINT_PERIOD, cfg.TEST.EVAL_PERIOD,
                               cfg.SOLVER.BEST_CHECKPOINT_METRIC, cfg.SOLVER.BEST_CHECKPOINT_MODE)
    rows = [[r["start"] + 1, r.get("killed_after_s", "-"), r.get("why", "-"), r.get("phase", "ran to the end"),
             "-" if r["resumed_after"] is None else r["resumed_after"] + 1,
             "-" if r.get("newest_after_kill") is None else r["newest_after_kill"] + 1,
             r.get("temp_files_left", "-"), r.get("torn_metrics_line", "-")] for r in kills]
    common.print_table(rows, ["start", "killed after s", "why then", "was", "resumed after iteration", "newest checkpoint after",
                              "temp files left", "torn metrics line"], title=f"{args.kills} kills, {total:.0f} s")
    common.print_table([[name, common.verdict(ok), detail] for name, ok, detail in checks],
                       ["check", "result", "detail"])
    settings = {"config": args.config_file, "opts": list(args.opts or DEMO_OVERRIDES), "kills": args.kills,
                "seed": args.seed, "first_window_s": args.first_window}
    results = {"starts": kills, "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in checks],
               "seconds": round(total, 1)}
    common.write_results(args.report or common.default_output("kill_resume", False), "kill_resume", machine,
                         settings, results)
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
