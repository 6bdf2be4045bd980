"""The one interface every pose network offers, so callers never ask which runtime they hold."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class PoseNetwork(Protocol):
    """What every pose network offers: uint8 RGB crops in, channels-first heatmaps out."""

    name: str
    input_size: tuple[int, int]        # (height, width) of a crop
    heatmap_size: tuple[int, int]      # (height, width) of a heatmap
    num_joints: int
    batch_sizes: tuple[int, ...]
    score_scale: float                 # heatmap peak -> confidence factor (livepose.commands.calibrate)

    def warmup(self) -> None: ...

    def __call__(self, crops_rgb_uint8: np.ndarray) -> np.ndarray: ...
