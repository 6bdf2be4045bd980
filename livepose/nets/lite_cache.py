"""Where LiteRT exports live and which one to run: one folder per weights file (by sha256) and input size.

Only the first run exports (in a child process, :func:`export_in_child`); the precision is then chosen from the
export's manifest: the fastest variant whose measured PCK@0.2 loss against the Keras model is within
``LiteConfig.max_pck_loss``. No TensorFlow here: a cached export runs without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from livepose.config import LiteConfig
from livepose.data import cache_dir, data_root
from livepose.nets.weights import WeightsRef

PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
MANIFEST = "manifest.json"
#: hex digits of the weights' sha256 that name their cache folder
SHA_PREFIX = 16
#: real person crops that calibrate int8 (LSPet, disjoint from the evaluation sets), relative to the data root
CALIBRATION_POOL = Path("train_pool") / "lspet" / "annotations.pose17.json"


class ExportFailed(RuntimeError):
    pass


def require_npz(ref: WeightsRef) -> WeightsRef:
    """``ref`` itself if LiteRT can export it (an ``.npz`` file), else a ValueError that says what to do."""
    if ref.kind != "npz":
        raise ValueError(f"the LiteRT runtime exports from an .npz weights file, got {ref.spec!r}; "
                         f"use --runtime keras for torch checkpoints and registry names")
    return ref


def has_calibration_data(root: Path | None = None) -> bool:
    """Whether int8 can be calibrated: the real person crops are there (``root`` default: the shared data)."""
    return (Path(root or data_root()) / CALIBRATION_POOL).exists()


def lite_dir(ref: WeightsRef, input_size: tuple[int, int] | None = None) -> Path:
    """<cache>/lite/<weights sha256, 16 hex>/<HxW>: one export per weights file and input size."""
    h, w = input_size or require_npz(ref).meta["input_size"]
    return cache_dir() / "lite" / ref.sha256[:SHA_PREFIX] / f"{h}x{w}"


def read_manifest(out_dir: Path) -> dict:
    path = Path(out_dir) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {"variants": {}}


def choose_precision(manifest: dict, max_pck_loss: float = LiteConfig.max_pck_loss) -> str:
    """The fastest exported variant (best ms per crop over its batch sizes) within the PCK@0.2 budget.

    fp32 is always allowed: it is the Keras network up to float rounding.
    """
    ok = {}
    for precision, v in manifest.get("variants", {}).items():
        acc = v.get("accuracy")
        if precision == "fp32" or (acc is not None and -acc["pck_delta"] <= max_pck_loss):
            ok[precision] = min(v["ms_per_crop"].values())
    if not ok:
        raise ValueError("no exported variant is within the accuracy budget; run `livepose export` with fp32")
    return min(ok, key=ok.get)


def export_in_child(weights: Path, out_dir: Path, input_size: tuple[int, int] | None = None,
                    cfg: LiteConfig = LiteConfig(), data_root: Path | None = None) -> dict:
    """:func:`livepose.nets.export.export`, run as `python -m livepose export` in a child process.

    The converter's heap stays with the process that ran it: exporting the three "auto" variants of v5 in-process
    measured 4.6 GB peak and 3.4 GB still resident afterwards. A subprocess (not multiprocessing) works from any
    caller, including scripts without a ``__main__`` guard. Its log goes to stderr; its summary table is dropped.
    """
    command = [sys.executable, "-m", "livepose", "export", "--model", str(weights), "--out-dir", str(out_dir),
               "--precision", ",".join(cfg.precisions), "--batch-sizes", ",".join(map(str, cfg.batch_sizes)),
               "--threads", str(cfg.num_threads), "--calibration-crops", str(cfg.calibration_crops),
               "--bench-runs", str(cfg.bench_runs)]
    if input_size:
        command += ["--input-size", f"{input_size[0]}x{input_size[1]}"]
    if data_root:
        command += ["--data", str(data_root)]
    if not cfg.phase_deconv:
        command.append("--no-phase-deconv")
    done = subprocess.run(command, stdout=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise ExportFailed(f"LiteRT export of {weights} failed (exit {done.returncode}; its error is above)")
    return read_manifest(out_dir)
