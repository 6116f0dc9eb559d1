"""Shared helpers of the benchmarks: the machine description, timing (warm-up, alternating
repetitions, medians), tables and the JSON results file.

Every benchmark compares two things measured side by side in one process (a ratio), so that
the machine's speed and load cancel out as far as possible: the candidates run in alternating
rounds (A B, then B A, ...) after a warm-up, and each reports its median.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Mapping, Optional, Sequence

# Benchmarks are run as `python bench/<name>.py` from anywhere: the repository root is where
# the configs and the demo dataset are found.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from segdet.utils.files import write_json  # noqa: E402  (after the repository is on sys.path)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def machine_info() -> dict[str, Any]:
    """What a result depends on: CPU, cores, threads, library versions, date, load."""
    import numpy as np
    import torch
    import torchvision

    try:
        import cv2

        cv2_version = cv2.__version__
    except ImportError:  # pragma: no cover - cv2 is a dependency, but the header must not fail
        cv2_version = None
    info = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "opencv": cv2_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
    }
    try:
        # A busy machine makes every number slower; the load tells a reader whether it was quiet.
        info["load_average_1_5_15"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    return info


def base_parser(description: str) -> argparse.ArgumentParser:
    """The flags every benchmark has: --quick, --output, --threads, --rounds, --warmup."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few repetitions (seconds): checks that the script runs")
    parser.add_argument("--output", default=None, metavar="JSON",
                        help="results file (default bench/results/<name>.json; <name>_quick.json with --quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads for every candidate (default: torch's own choice)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating timed rounds (default per script)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default per script)")
    return parser


def add_data_root(parser: argparse.ArgumentParser) -> None:
    """--data-root: the folder holding the real datasets (default $SEGDET_DATASETS, else
    ../shared/datasets next to the repository)."""
    parser.add_argument("--data-root", default=os.environ.get("SEGDET_DATASETS", os.path.join(
        os.path.dirname(REPO_ROOT), "shared", "datasets")),
        help="folder holding camvid/ (default $SEGDET_DATASETS, else ../shared/datasets)")


def camvid_root(data_root: str) -> str:
    """`<data_root>/camvid`, or exit saying where it was looked for."""
    root = os.path.join(data_root, "camvid")
    if not os.path.isdir(root):
        raise SystemExit(f"CamVid not found at {root}; give --data-root (the folder holding camvid/)")
    return root


def setup_threads(threads: Optional[int]) -> int:
    """Apply --threads (same for every candidate) and return the count in use."""
    import torch

    if threads is not None:
        if threads < 1:
            raise SystemExit(f"--threads {threads}: must be >= 1")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def default_output(name: str, quick: bool) -> str:
    return os.path.join(REPO_ROOT, "bench", "results", f"{name}{'_quick' if quick else ''}.json")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def alternate(candidates: Mapping[str, Callable[[], Any]], rounds: int, warmup: int = 1,
              on_result: Optional[Callable[[str, Any], None]] = None,
              self_timed: bool = False) -> dict[str, list[float]]:
    """Time each candidate once per round, alternating; the order reverses every other round
    (A B C, C B A, ...) so that a slow drift of the machine hits all candidates alike.

    Args:
        candidates: name -> a call without arguments (one repetition).
        rounds: timed rounds.
        warmup: untimed rounds first (caches, allocator, lazy initialization).
        on_result: called with (name, result) after every call, warm-up included (checks).
        self_timed: each call returns its own measurement (e.g. seconds after its own warm-up,
            or seconds per item) instead of being timed from outside.
    Returns:
        name -> list of seconds, one per timed round.
    """
    names = list(candidates)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            seconds, result = timed(candidates[name])
            if self_timed:
                seconds = float(result)
            if on_result is not None:
                on_result(name, result)
            if r >= warmup:
                times[name].append(seconds)
    return times


def stage_times(stages: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds of each stage over `rounds` passes (after one untimed pass), stages called
    in order (each may use the previous one's result), without gradients."""
    import torch

    samples: dict[str, list[float]] = {name: [] for name in stages}
    with torch.inference_mode():
        for r in range(rounds + 1):
            for name, call in stages.items():
                seconds, _ = timed(call)
                if r:
                    samples[name].append(seconds)
    return {name: summary(s)["median"] for name, s in samples.items()}


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Median (the reported value), mean, min, max and the interquartile range of timings."""
    xs = sorted(samples)
    if not xs:
        return {"n": 0}
    out = {"n": len(xs), "median": statistics.median(xs), "mean": statistics.fmean(xs), "min": xs[0],
           "max": xs[-1]}
    if len(xs) >= 4:
        q = statistics.quantiles(xs, n=4)
        out["iqr"] = q[2] - q[0]
    return out


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def verdict(ok: Optional[bool]) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], title: str = "",
                floatfmt: str = ".4g") -> str:
    """Print (and return) a table in tabulate's "github" style."""
    from tabulate import tabulate

    text = tabulate(rows, headers=headers, tablefmt="github", floatfmt=floatfmt)
    if title:
        text = f"\n{title}\n{text}"
    print(text, flush=True)
    return text


def print_machine(info: Mapping[str, Any]) -> None:
    keys = ["cpu_model", "usable_cores", "torch_threads", "torch", "torchvision", "numpy", "date_utc",
            "load_average_1_5_15"]
    print("Machine: " + "; ".join(f"{k}={info.get(k)}" for k in keys if k in info), flush=True)


def write_results(path: str, benchmark: str, machine: Mapping[str, Any], settings: Mapping[str, Any],
                  results: Any, targets: Optional[Mapping[str, Any]] = None) -> str:
    """Write {benchmark, machine, settings, results, targets} as JSON (atomically) and say where."""
    data = {"benchmark": benchmark, "machine": dict(machine), "settings": dict(settings),
            "results": results, "targets": dict(targets or {})}
    path = write_json(data, os.path.abspath(path))
    print(f"\nResults written to {path}", flush=True)
    return path


def current_rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc), 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident memory: VmHWM (since the last reset) where available, else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def mib(n_bytes: float) -> float:
    return n_bytes / 2**20
