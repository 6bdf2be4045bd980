"""SimpleBaseline weights: read PyTorch checkpoints safely, convert them to Keras, fetch and cache them.

``load_model`` (and the rest of :mod:`livepose.weights.convert`) is imported lazily: it pulls in TensorFlow,
which ``livepose weights list`` and the checkpoint reader do not need.
"""

from __future__ import annotations

from typing import Any

from livepose.weights.torchfile import CheckpointError, UnsafeCheckpointError, load_checkpoint, load_state_dict

__all__ = ["CheckpointError", "UnsafeCheckpointError", "load_checkpoint", "load_state_dict", "load_model",
           "import_checkpoint"]


def __getattr__(name: str) -> Any:
    if name in ("load_model", "import_checkpoint"):
        from livepose.weights import convert

        return getattr(convert, name)
    raise AttributeError(f"module 'livepose.weights' has no attribute {name!r}")
