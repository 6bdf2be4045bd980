"""The pose network on LiteRT (XNNPACK): the same protocol as the Keras network, without TensorFlow.

This module must never import TensorFlow (tests/test_architecture.py checks it in a fresh interpreter): a
LiteRT run starts in a fraction of TensorFlow's import time and memory. The ``.tflite`` files come from
:mod:`livepose.nets.export` through the cache in :mod:`livepose.nets.lite_cache`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from livepose.config import LiteConfig

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:        # the older standalone wheel has the same interpreter
    from tflite_runtime.interpreter import Interpreter


class LiteNet:
    """One LiteRT interpreter per exported fixed batch size; the :class:`livepose.nets.protocol.PoseNetwork` protocol."""

    def __init__(self, files: dict[int, Path], num_threads: int = LiteConfig.num_threads, name: str = "",
                 score_scale: float = 1.0) -> None:
        if not files:
            raise ValueError("LiteNet needs at least one .tflite file")
        self.name = name or Path(next(iter(files.values()))).stem
        self.score_scale = score_scale
        self._runners: dict[int, tuple] = {}
        shapes = set()
        for batch, path in sorted(files.items()):
            interp = Interpreter(model_path=str(path), num_threads=num_threads)
            interp.allocate_tensors()
            inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
            if inp["shape"][0] != batch or inp["dtype"] != np.float32 or out["dtype"] != np.float32:
                raise ValueError(f"{path}: expected a float32 model with batch {batch}, got input "
                                 f"{tuple(inp['shape'])} {inp['dtype'].__name__}")
            shapes.add((tuple(inp["shape"][1:]), tuple(out["shape"][1:])))
            self._runners[batch] = (interp, inp["index"], out["index"], np.zeros(inp["shape"], np.float32))
        if len(shapes) != 1:
            raise ValueError(f"the .tflite files disagree on input/output shapes: {sorted(shapes)}")
        (in_shape, out_shape), = shapes
        self.batch_sizes = tuple(sorted(self._runners))
        self.input_size = (int(in_shape[0]), int(in_shape[1]))
        self.heatmap_size = (int(out_shape[0]), int(out_shape[1]))
        self.num_joints = int(out_shape[2])

    def warmup(self) -> None:
        for n in self.batch_sizes:
            self(np.zeros((n, *self.input_size, 3), np.uint8))

    def __call__(self, crops_rgb_uint8: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB crops -> (N, J, h, w) float32 heatmaps (channels first, as decoded).

        N is split greedily into the exported batch sizes (largest first); only a remainder smaller than every
        exported size is padded.
        """
        crops = np.asarray(crops_rgb_uint8)
        if crops.ndim != 4 or crops.shape[1:] != (*self.input_size, 3):
            raise ValueError(f"{self.name}: crops must be (N, {self.input_size[0]}, {self.input_size[1]}, 3) RGB, "
                             f"got {crops.shape}")
        out = np.empty((len(crops), *self.heatmap_size, self.num_joints), np.float32)
        start = 0
        while start < len(crops):
            left = len(crops) - start
            size = max((b for b in self.batch_sizes if b <= left), default=self.batch_sizes[0])
            n = min(size, left)
            interp, in_index, out_index, buf = self._runners[size]
            buf[:n] = crops[start:start + n]
            buf[n:] = 0.0
            interp.set_tensor(in_index, buf)
            interp.invoke()
            out[start:start + n] = interp.get_tensor(out_index)[:n]
            start += n
        return out.transpose(0, 3, 1, 2)
