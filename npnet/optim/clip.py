"""Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_."""

from __future__ import annotations

import numpy as np

from npnet.validate import number


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale every gradient in place so that their global L2 norm is at most `max_norm`.

    ‖g‖ = √(Σₖ ‖gₖ‖²) over all arrays;  gₖ ← gₖ · min(1, max_norm / (‖g‖ + 1e-6)).
    Returns ‖g‖ before clipping. The 1e-6 (PyTorch's) keeps the division finite for zero
    gradients; it also means a norm within 1e-6 of `max_norm` is scaled by a hair, as in PyTorch.
    """
    max_norm = number("max_norm", max_norm, low=0.0, low_open=True)
    if not grads:
        return 0.0
    # The norm of the per-array norms: the same grouping as PyTorch, in the gradients' dtype.
    total = float(np.linalg.norm([np.linalg.norm(g.ravel()) for g in grads.values()]))
    factor = max_norm / (total + 1e-6)
    if factor < 1.0:
        for g in grads.values():
            g *= factor
    return total
