"""Small helpers around torch.distributed; every one works in a single process too."""
from __future__ import annotations

from typing import Any

import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across all processes (no-op in a single process)."""
    if get_world_size() > 1:
        dist.barrier()


def all_gather(data: Any) -> list[Any]:
    """Gather a picklable object from every process; returns one item per rank."""
    if get_world_size() == 1:
        return [data]
    gathered: list[Any] = [None] * get_world_size()
    dist.all_gather_object(gathered, data)
    return gathered


def broadcast(data: Any, src: int = 0) -> Any:
    """Send a picklable object from rank `src` to every process."""
    if get_world_size() == 1:
        return data
    holder = [data]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]
