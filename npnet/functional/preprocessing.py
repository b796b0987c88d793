"""Preprocessing: standardizing an array with its own statistics (series chapter 1.1)."""

from __future__ import annotations

import numpy as np


def normalize(x: np.ndarray, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Standardize: x' = (x − mean) / std, so x' has mean 0 and (population) std 1.

    `axis=None` uses one mean and std for the whole array (images: every pixel alike);
    `axis=0` one per column (tabular features). A constant slice has std 0 and is only
    centred, not divided, so no NaN appears. Integer input gives float64; floats keep
    their dtype. The training pipeline's `data.normalize: standard` is this map with the
    statistics fitted on the training split and then applied to every split
    (`npnet.data.fit_normalization`).
    x: any shape -> the same shape.
    """
    x = np.asarray(x)
    x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)
    mean = x.mean(axis=axis, keepdims=True)
    std = x.std(axis=axis, keepdims=True)
    return (x - mean) / np.where(std > 0, std, 1.0).astype(x.dtype)
