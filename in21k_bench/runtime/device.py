"""One device resolver for every torch / faiss code path (``--device auto|cpu|cuda[:N]``).

``auto`` picks the GPU when the engine that will run the work sees one, else the CPU; an explicit
``cuda`` without a GPU is a one-line :class:`InvalidInputError`. The same code runs on both devices:
the device is only a parameter.
"""

from __future__ import annotations

from ..errors import InvalidInputError

DEVICE_HELP = "auto (GPU when available), cpu or cuda[:N]."


def torch_num_gpus() -> int:
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def faiss_num_gpus() -> int:
    import faiss

    try:
        return int(faiss.get_num_gpus()) if hasattr(faiss, "StandardGpuResources") else 0
    except Exception:  # pragma: no cover - broken GPU runtime
        return 0


def resolve_device(device: object = "auto", engine: str = "torch") -> str:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` for ``device`` (``None``/``"auto"``, a string or a
    ``torch.device``). ``engine`` is ``"torch"`` or ``"faiss"``: whose GPUs count."""
    text = str(device if device is not None else "auto").strip().lower()
    if text != "auto" and text != "cpu" and not (text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit())):
        raise InvalidInputError(f"device: expected auto, cpu or cuda[:N], found {device!r}")
    if text == "cpu":
        return "cpu"
    n = faiss_num_gpus() if engine == "faiss" else torch_num_gpus()
    if text == "auto":
        return "cuda" if n > 0 else "cpu"
    if n == 0:
        hint = " (install the .[gpu] extra: faiss-gpu)" if engine == "faiss" else ""
        raise InvalidInputError(
            f"device: expected a GPU visible to {engine}{hint} for --device {text}, found none; use --device cpu"
        )
    return text
