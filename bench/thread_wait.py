#!/usr/bin/env python
"""OpenMP wait policy: a ResNet-18 forward pass with torch's threads as libgomp sets them by
default (spin a while, then sleep), always spinning, sleeping (OMP_WAIT_POLICY=PASSIVE, what `import segdet` sets), and with
one thread. Each setting runs in a fresh process (the policy is read when torch loads), in
alternating rounds. Run it on a quiet machine and while other jobs load the cores.

    .venv/bin/python bench/thread_wait.py [--rounds 3] [--threads 2]
"""
from __future__ import annotations

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

SETTINGS = {
    "libgomp's default (OMP_WAIT_POLICY unset)": {},
    "spinning (OMP_WAIT_POLICY=ACTIVE)": {"OMP_WAIT_POLICY": "ACTIVE"},
    "sleeping (OMP_WAIT_POLICY=PASSIVE)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "one thread (OMP_NUM_THREADS=1)": {"OMP_NUM_THREADS": "1"},
}

CHILD = """
import time, torch, torchvision
torch.set_num_threads({threads})
m = torchvision.models.resnet18().eval()
x = torch.randn(1, 3, 256, 256)
with torch.no_grad():
    for _ in range(2):
        m(x)
    t = time.perf_counter()
    for _ in range({passes}):
        m(x)
print((time.perf_counter() - t) / {passes})
"""


def main() -> None:
    args = common.base_parser(__doc__.splitlines()[0]).parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    threads = args.threads or 2
    passes = 3 if args.quick else 10
    info = common.machine_info()
    common.print_machine(info)

    def run(env_update: dict) -> float:
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
        env.update(env_update)
        code = CHILD.format(threads=1 if "OMP_NUM_THREADS" in env_update else threads, passes=passes)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    times = common.alternate({name: (lambda e=e: run(e)) for name, e in SETTINGS.items()}, rounds, warmup=0,
                             self_timed=True)
    medians = {name: common.summary(t)["median"] for name, t in times.items()}
    sleeping = medians["sleeping (OMP_WAIT_POLICY=PASSIVE)"]
    rows = [[name, 1000 * m, common.ratio(m, sleeping)] for name, m in medians.items()]
    common.print_table(rows, ["setting", "ms per forward pass (median)", "x sleeping"],
                       title=f"ResNet-18, 1x3x256x256, {threads} threads, {passes} passes per process, "
                             f"{rounds} rounds; load average {info.get('load_average_1_5_15')}")
    common.write_results(args.output or common.default_output("thread_wait", args.quick), "thread_wait", info,
                         {"threads": threads, "rounds": rounds, "passes": passes},
                         {name: common.summary(t) for name, t in times.items()})


if __name__ == "__main__":
    main()
