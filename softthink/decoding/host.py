"""Small host-built tensors for the decode loop, copied to the device without a device synchronisation.

``torch.tensor(values, device="cuda")`` copies from pageable host memory with ``non_blocking=False``: the host
then waits for every kernel queued before the copy (a full stream synchronisation). The loop builds a few such
tensors per step (phase masks, per-row temperatures, refilled slots); made here they go through pinned memory
asynchronously, so the step's one device-to-host copy stays the only synchronisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def host_tensor(values: Sequence, device: torch.device | str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.tensor(values, dtype=dtype)`` on ``device``; on CUDA copied from pinned memory without waiting for
    the device (the caching host allocator keeps the pinned block until the copy has run)."""
    device = torch.device(device)
    tensor = torch.tensor(values, dtype=dtype)
    if device.type == "cpu":
        return tensor
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
