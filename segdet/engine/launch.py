"""Start one process per device with torch.distributed (nccl on GPUs, gloo on CPU)."""
from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

logger = logging.getLogger("segdet.engine")


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
    mp.start_processes(
        _worker,
        nprocs=num_gpus_per_machine,
        args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args, timeout),
        daemon=False,
        start_method="spawn",
    )


def _worker(local_rank: int, main_func, world_size: int, num_per_machine: int, machine_rank: int,
            dist_url: str, args: tuple, timeout: timedelta) -> None:
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
    try:
        dist.barrier()
        main_func(*args)
    finally:
        dist.destroy_process_group()
