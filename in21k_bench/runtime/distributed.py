"""Processes started by ``torchrun``: who am I, which device is mine, and which part of a job is mine.

Every multi-process job of the package (``features extract``, ``relabel``, ``zeroshot``, ``knn``)
follows the same pattern, written down in ``docs/scale.md``:

* every rank runs the same command (``torchrun ... --no-python in21k-bench ...``);
* the work is a list of *units* with a global identity (shards of a feature store, chunks of an
  embedding work area, query chunks of a neighbour file); a unit is finished when its output file
  exists (written atomically), so a re-run skips finished units whatever the world size was;
* the unfinished units are dealt out round-robin (:func:`my_units`): deterministic, disjoint, and
  the same on every rank without communication;
* rank 0 assembles the result after a barrier (index files, ``meta.json``); nothing else is shared.

One process (no ``WORLD_SIZE`` in the environment, or 1) is the special case rank 0 of 1: no process
group is created and the barriers do nothing. Backends: NCCL when the device is a GPU, gloo on CPU.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence

from .device import resolve_device

#: Barrier timeout: ranks wait at the final barrier for the slowest rank's last unit.
TIMEOUT = timedelta(hours=3)


@dataclass(frozen=True)
class Dist:
    """Rank, world size and the device of this process (``cuda:<local rank>`` on GPUs under torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as td

            if self.device.startswith("cuda"):
                td.barrier(device_ids=[self.local_rank])
            else:
                td.barrier()

    def main_first(self, fn, *args, **kwargs) -> Any:
        """Run ``fn`` on rank 0 only and hand its result -- or its one-line :class:`In21kError` -- to
        every rank, so a bad input stops all ranks with the same message instead of leaving the
        others waiting at a barrier. The result must be small (it is pickled and broadcast)."""
        from ..errors import In21kError

        result = err = None
        if self.is_main:
            try:
                result = fn(*args, **kwargs)
            except In21kError as exc:
                err = (type(exc), str(exc))
        result, err = self.broadcast((result, err))
        if err is not None:
            cls, msg = err
            raise cls(msg)
        return result

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (small objects: an error message, a flag)."""
        if not self.enabled:
            return obj
        import torch.distributed as td

        box = [obj]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj: Any) -> list:
        """Every rank's ``obj`` in rank order (small objects)."""
        if not self.enabled:
            return [obj]
        import torch.distributed as td

        out: list = [None] * self.world_size
        td.all_gather_object(out, obj)
        return out


def world_from_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment variables (0, 1, 0 without)."""
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def _leave_group() -> None:
    """Leave the process group at exit: a gloo group left open can abort the process while its
    threads are torn down ("terminate called without an active exception")."""
    import torch.distributed as td

    if td.is_available() and td.is_initialized():
        td.destroy_process_group()


def init(device: object = "auto", engine: str = "torch") -> Dist:
    """Join the process group torchrun set up (no-op for one process) and pick this rank's device.

    ``device`` as for :func:`in21k_bench.runtime.device.resolve_device`; under torchrun ``cuda`` becomes
    ``cuda:<LOCAL_RANK>`` (one GPU per process), an explicit ``cuda:N`` is kept.
    """
    rank, world, local = world_from_env()
    dev = resolve_device(device, engine=engine)
    if world > 1 and dev == "cuda":
        dev = f"cuda:{local}"
    if world <= 1:
        return Dist(0, 1, 0, dev)
    import torch.distributed as td

    if not td.is_initialized():
        if dev.startswith("cuda"):
            import torch

            torch.cuda.set_device(int(dev.split(":")[1]) if ":" in dev else local)
        td.init_process_group(backend="nccl" if dev.startswith("cuda") else "gloo", timeout=TIMEOUT)
        atexit.register(_leave_group)
    return Dist(td.get_rank(), td.get_world_size(), local, dev)


#: Test hook: ``IN21K_BENCH_FAULT_KILL_AFTER=<stage>:<k>`` makes the process that finishes unit ``k``
#: of ``stage`` (``extract``, ``embed``, ``walk``, ``knn``) kill itself with SIGKILL right after it
#: is on disk -- how the tests simulate a node failure.
FAULT_ENV = "IN21K_BENCH_FAULT_KILL_AFTER"


def fault_point(stage: str, k: int) -> None:
    spec = os.environ.get(FAULT_ENV)
    if spec and spec == f"{stage}:{k}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def wait_for(paths: Sequence, timeout: float = 120.0) -> list:
    """The ``paths`` still absent after waiting up to ``timeout`` seconds. Files another node has just
    renamed into place can take a few seconds to appear on a network filesystem (attribute caching),
    so rank 0 waits a little before declaring a unit missing."""
    import time
    from pathlib import Path

    deadline = time.monotonic() + timeout
    missing = [p for p in paths if not Path(p).is_file()]
    while missing and time.monotonic() < deadline:
        time.sleep(1.0)
        missing = [p for p in missing if not Path(p).is_file()]
    return missing


def my_units(units: Sequence[int], dist: Dist) -> list[int]:
    """This rank's share of ``units`` (sorted unit ids still to do): round-robin, ``units[rank::world]``."""
    return list(units)[dist.rank :: dist.world_size]
