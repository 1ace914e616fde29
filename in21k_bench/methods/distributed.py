"""``torch.distributed`` set-up for the self-distillation training (one process or ``torchrun``).

Under ``torchrun`` (``WORLD_SIZE > 1``) :func:`init_distributed` initialises the process group once
(NCCL when the resolved device is a GPU, gloo on CPU); with one process it is a no-op. Calling it
again returns the same ranks without re-initialising.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..device import resolve_device

__all__ = ["DistInfo", "init_distributed", "barrier"]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: object = "auto") -> DistInfo:
    """Initialise ``torch.distributed`` from torchrun's environment (no-op for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = resolve_device(device, engine="torch").startswith("cuda")
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()
