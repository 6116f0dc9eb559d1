"""Start one process per device with torch.distributed (nccl on GPUs, gloo on CPU).

The launching process waits for its processes and ends as they do: an exception in one of
them is raised again in the launcher as itself (a SegdetError prints one line there, as in a
single-process run, not torch.multiprocessing's wrapped traceback). The processes stop
together where they agree (`train_loop`); one that ends by an error nobody agreed on (a
crash in the middle of a step) would leave the others waiting in a collective, so they are
terminated when they outlive it by `STRAGGLER_SECONDS`. Ctrl-C or SIGTERM sent to the
launcher alone is passed on to every process as SIGTERM.
"""
from __future__ import annotations

import logging
import multiprocessing.connection
import os
import pickle
import signal
import socket
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from segdet.errors import SegdetError
from segdet.utils.failures import RemoteFailure

logger = logging.getLogger("segdet.engine")

# How long the other processes may outlive one that failed before they are terminated; they
# stop on their own at the next iteration, after rank 0 has saved its checkpoint.
STRAGGLER_SECONDS = 60.0

# The exit status of a process stopped by a second Ctrl-C (128 + SIGINT, as a shell reports it).
_INTERRUPTED = 130


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(main_func: Callable[..., Any], num_gpus_per_machine: int, num_machines: int = 1,
           machine_rank: int = 0, dist_url: str | None = None, args: tuple = (),
           timeout: timedelta = timedelta(minutes=30)) -> None:
    """Run `main_func(*args)` in num_gpus_per_machine x num_machines processes.

    Args:
        num_gpus_per_machine: processes on this machine (GPUs, or CPU processes without CUDA).
        dist_url: "tcp://host:port" of machine 0; None or "auto" picks a free local port
            (single machine only).
    """
    world_size = num_gpus_per_machine * num_machines
    if world_size <= 1:
        main_func(*args)
        return
    if dist_url in (None, "auto"):
        if num_machines > 1:
            raise ValueError("--dist-url auto only works on one machine; give tcp://HOST:PORT of machine 0")
        dist_url = f"tcp://127.0.0.1:{_free_port()}"
    with tempfile.TemporaryDirectory(prefix="segdet-launch-") as failures_dir:
        context = mp.start_processes(
            _worker,
            nprocs=num_gpus_per_machine,
            args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args, timeout, failures_dir),
            daemon=False,
            start_method="spawn",
            join=False,
        )
        _wait_for(context.processes)
        failures = [_read_failure(os.path.join(failures_dir, name)) for name in sorted(os.listdir(failures_dir))]
    _raise_outcome(context.processes, [f for f in failures if f is not None])


def _wait_for(processes: list) -> None:
    """Wait until every process has ended; pass Ctrl-C / SIGTERM on as SIGTERM; terminate the
    processes that outlive a failed one by STRAGGLER_SECONDS (kill them 10 s later)."""

    def pass_on(signum, frame) -> None:
        for p in processes:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        failed_at = None
        ended: set[int] = set()  # pids terminated (then killed) after a failure
        while any(p.is_alive() for p in processes):
            multiprocessing.connection.wait([p.sentinel for p in processes if p.is_alive()], timeout=1.0)
            if failed_at is None and any(p.exitcode not in (None, 0) for p in processes):
                failed_at = time.monotonic()
            if failed_at is None or time.monotonic() - failed_at < STRAGGLER_SECONDS:
                continue
            for p in processes:
                if p.is_alive() and p.pid not in ended:
                    logger.warning("training process (pid %d) still runs %.0f s after another one failed: "
                                   "terminating it", p.pid, STRAGGLER_SECONDS)
                    p.terminate()
                    ended.add(p.pid)
                elif p.is_alive() and time.monotonic() - failed_at > STRAGGLER_SECONDS + 10:
                    p.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _read_failure(path: str) -> RemoteFailure | None:
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception:  # a process killed while writing it: its exit code tells
        return None


def _raise_outcome(processes: list, failures: list[RemoteFailure]) -> None:
    """Raise the failure of the lowest rank that failed; or a RuntimeError for a process that
    ended without saying why (killed, crashed); or return."""
    if failures:
        failures[0].reraise()
    if any(p.exitcode == _INTERRUPTED for p in processes):
        raise SystemExit(_INTERRUPTED)  # a second Ctrl-C: the processes stopped at once, as asked
    for rank, p in enumerate(processes):
        if p.exitcode:
            how = f"was killed by {signal.Signals(-p.exitcode).name}" if p.exitcode < 0 else \
                f"ended with exit status {p.exitcode}"
            raise RuntimeError(f"training process {rank} (pid {p.pid}) {how}")


def _worker(local_rank: int, main_func, world_size: int, num_per_machine: int, machine_rank: int,
            dist_url: str, args: tuple, timeout: timedelta, failures_dir: str) -> None:
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        if num_per_machine > torch.cuda.device_count():
            raise RuntimeError(f"--num-gpus {num_per_machine} but only {torch.cuda.device_count()} GPUs are visible")
        torch.cuda.set_device(local_rank)
    else:
        # CPU processes share the cores instead of each taking all of them.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // num_per_machine))
    rank = machine_rank * num_per_machine + local_rank
    dist.init_process_group("nccl" if use_cuda else "gloo", init_method=dist_url, world_size=world_size,
                            rank=rank, timeout=timeout)
    status = 0
    try:
        dist.barrier()
        main_func(*args)
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, quietly
        status = _INTERRUPTED
    except Exception as e:
        # The launcher raises it again: it alone prints, once.
        with open(os.path.join(failures_dir, f"{rank:05d}.pkl"), "wb") as f:
            pickle.dump(RemoteFailure.capture(e, f"training process {rank}"), f)
        status = 2 if isinstance(e, SegdetError) else 1
    finally:
        dist.destroy_process_group()
    _exit_now(status)


def _exit_now(status: int) -> None:
    """End a training process without the interpreter's teardown, once its logs and output are
    flushed: torch.distributed's C++ threads (gloo, the TCP store) destroyed there, after a peer
    has gone, can abort with "terminate called without an active exception" on stderr
    (pytorch/pytorch#190489) and turn a one-line error into two."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a broken pipe: nothing left to lose
            pass
    os._exit(status)
