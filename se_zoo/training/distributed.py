"""Process-group setup for training under ``torchrun``, and the few collectives it needs.

``torchrun`` (``python -m torch.distributed.run``) starts one process per device
and sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`setup` reads them and joins the process group with NCCL
on CUDA and Gloo on CPU. Without those variables everything runs as a single
process (rank 0 of 1) and the collectives are no-ops.
"""
import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist

from ..errors import DeviceUnavailable, InvalidArgument

__all__ = ["DistEnv", "setup", "teardown", "all_reduce_sum", "all_gather_stack", "barrier"]


@dataclass
class DistEnv:
    """Where this process sits in the job.

    Attributes:
        rank: Global rank (0 logs, saves and pushes).
        world_size: Number of processes.
        local_rank: Rank on this node (selects the CUDA device).
        device: The device this process computes on.
        owns_group: Whether :func:`setup` created the process group (and
            :func:`teardown` should destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_primary(self) -> bool:
        """True on the process that logs, saves and pushes."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    if not value.isdigit():
        raise InvalidArgument(f"environment variable {name} must be a non-negative integer, got {value!r}")
    return int(value)


def setup(device: Optional[str] = None) -> DistEnv:
    """Join the process group that ``torchrun`` describes, if any.

    Args:
        device: ``"cpu"``, ``"cuda"`` or ``None`` (CUDA when available). Under
            ``torchrun`` a CUDA process uses ``cuda:LOCAL_RANK``.

    Returns:
        The process's :class:`DistEnv`. A group created by the caller beforehand
        is used as is.

    Raises:
        ValueError: if ``device`` is not ``None``, ``"cpu"`` or ``"cuda"``, or the
            torchrun variables are malformed.
        RuntimeError: if ``device="cuda"`` and CUDA is unavailable.
    """
    if device not in (None, "cpu", "cuda"):
        raise InvalidArgument(f"device must be None, 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("device='cuda' was requested but CUDA is not available")
    use_cuda = torch.cuda.is_available() if device is None else device == "cuda"
    local_rank = _env_int("LOCAL_RANK", 0)
    world_size = _env_int("WORLD_SIZE", 1)
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    owns_group = False
    if dist.is_available() and dist.is_initialized():
        world_size = dist.get_world_size()
    elif world_size > 1:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", device_id=dev if use_cuda else None)
        owns_group = True
    rank = dist.get_rank() if world_size > 1 else 0
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=dev, owns_group=owns_group)


def teardown(env: DistEnv) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum ``tensor`` over all processes (in place, returned for chaining)."""
    if env.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_stack(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Every process's ``tensor`` (same shape and dtype everywhere), stacked in rank order on the CPU."""
    if not env.distributed:
        return tensor.unsqueeze(0).cpu()
    local = tensor.to(env.device)
    parts = [torch.empty_like(local) for _ in range(env.world_size)]
    dist.all_gather(parts, local)
    return torch.stack(parts).cpu()


def barrier(env: DistEnv) -> None:
    """Wait until every process gets here."""
    if env.distributed:
        dist.barrier()
