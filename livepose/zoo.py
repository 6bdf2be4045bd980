"""Which network to run: the shipped default, a weights file, or a checkpoint name from the registry.

Resolution is one function so the CLI, the app and the benchmark all accept the same ``--model`` values.
"""

from __future__ import annotations

import logging
from pathlib import Path


log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
#: name -> shipped weights file (trained in-house, see README "Model card").
SHIPPED = {
    # The default since 2026-12-07 is m1, a SimpleBaseline head on MoveNet Thunder's pose-pretrained backbone
    # (docs/model-card.md). "fast" is v10 (ResNet-18, trained from scratch): cheaper per crop, for slow machines
    # and crowds; r18-128x96 (v5) costs a quarter of v10.
    "default": "simplebaseline_movenet_256x192.npz",
    "movenet-256x192": "simplebaseline_movenet_256x192.npz",
    "fast": "simplebaseline_r18_256x192.npz",
    "r18-256x192": "simplebaseline_r18_256x192.npz",
    "r18-128x96": "simplebaseline_r18_128x96.npz",
}


class ModelNotFound(FileNotFoundError):
    pass


def shipped_path(name: str = "default") -> Path:
    path = ASSETS / SHIPPED[name]
    if not path.exists():
        raise ModelNotFound(f"shipped weights {path} are missing: reinstall from a full clone "
                            f"(git lfs is not used; the file is in the repository)")
    return path


def load_posenet(spec: str = "default", input_size: tuple[int, int] | None = None,
                 batch_sizes: tuple[int, ...] = (1, 2, 4, 8), runtime: str = "keras", precision: str = "auto"):
    """A ready :class:`livepose.model.PoseNet` from a shipped name, an ``.npz`` file, or a torch checkpoint.

    ``input_size`` overrides the size the weights were trained at (the network is fully convolutional).
    ``runtime="litert"`` returns a :class:`livepose.runtime.LiteNet` instead (same interface; ``precision``
    picks the variant, batch sizes are the exported ones); ``"auto"`` picks LiteRT where an export is cached.
    """
    from livepose.runtime import resolve_runtime

    runtime = resolve_runtime(runtime, spec, input_size, precision)
    if runtime == "litert":
        from livepose.runtime import load_litenet

        return load_litenet(spec, input_size, precision)
    if runtime != "keras":
        raise ValueError(f"runtime must be 'auto', 'keras' or 'litert', got {runtime!r}")
    from livepose.model import PoseNet, build_simplebaseline, config_from_meta, load_weights_npz, read_npz_meta

    path = shipped_path(spec) if spec in SHIPPED else Path(spec)
    if path.suffix == ".npz":
        if not path.exists():
            raise ModelNotFound(f"weights file {path} does not exist")
        meta = read_npz_meta(path)
        size = tuple(input_size or meta["input_size"])
        model = build_simplebaseline(config_from_meta(meta, size))
        load_weights_npz(model, path)
        name = f"{path.stem}" + ("" if size == tuple(meta["input_size"]) else f"@{size[0]}x{size[1]}")
        return PoseNet(model, batch_sizes, name=name, score_scale=meta.get("score_scale", 1.0))
    from livepose.weights import load_model  # torch checkpoints and registry names

    model = load_model(spec, input_size=input_size)
    return PoseNet(model, batch_sizes, name=Path(spec).stem)
