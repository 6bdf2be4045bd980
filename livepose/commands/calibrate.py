"""Make one weights file's keypoint confidences comparable to another's: ``livepose calibrate``.

A keypoint's confidence is its heatmap's peak, and the thresholds that act on it (smoothing's ``min_score``, the
renderer's, the crop tracker's ``min_keypoint_score``) were tuned on the 128x96 weights (v5, the default until
2026-12-04), so they are the reference. How high a network's
peaks run depends on its training as much as on the image: v6, fine-tuned for 2,400 steps at a 64x48 heatmap, peaks
at about half of what the 128x96 model does on the same people, so those thresholds would treat 23-40 % of its
keypoints on the JHMDB clip as missing. ``score_scale``, stored in the weights file, multiplies its peaks so that
the median confidence of the labelled joints on the same ground-truth boxes matches the reference's. One number per
file keeps the order of the scores (and every PCK on given boxes) as it was.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from livepose.config import CropConfig
from livepose.data import load_dataset
from livepose.estimate import PoseEstimator
from livepose.nets.load import load_network
from livepose.nets.weights import write_npz_meta


def labelled_peaks(net, entries_and_images) -> np.ndarray:
    """Confidences of every labelled joint of every GT person, as ``net`` gives them (its own scale applied)."""
    estimator = PoseEstimator(net, CropConfig())
    found = [estimator(image, entry.boxes).scores[entry.gt[..., 2] > 0]
             for entry, image in entries_and_images if len(entry.boxes)]
    if not found:
        raise ValueError("the dataset has no labelled person to calibrate on")
    return np.concatenate(found)


def median_ratio(reference: np.ndarray, model: np.ndarray) -> float:
    """The scale that moves the median of ``model`` onto the median of ``reference``."""
    return float(np.median(reference) / np.median(model))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, help="a *.pose17.json with GT people (e.g. images_gt/annotations.pose17.json)")
    p.add_argument("--model", required=True, help="the .npz weights file to calibrate (rewritten in place)")
    p.add_argument("--reference", default="r18-128x96", help="the weights whose confidences the thresholds fit")


def main(args: argparse.Namespace) -> int:
    path = Path(args.model)
    if path.suffix != ".npz" or not path.is_file():
        print(f"livepose calibrate: {path} is not an .npz weights file", file=sys.stderr)
        return 2
    try:
        net = load_network(str(path), batch_sizes=(1, 8))  # first: a damaged file fails before a minute of work
        net.score_scale = 1.0                              # calibrate the raw peaks, not an earlier scale
        ds = load_dataset(args.dataset)
        entries = list(zip(ds.entries, ds.images()))
        reference = labelled_peaks(load_network(args.reference, batch_sizes=(1, 8)), entries)
        raw = labelled_peaks(net, entries)
    except (FileNotFoundError, ValueError) as exc:
        print(f"livepose calibrate: {exc}", file=sys.stderr)
        return 2
    scale = median_ratio(reference, raw)
    write_npz_meta(path, score_scale=round(scale, 4))
    print(f"livepose calibrate: {len(raw)} labelled joints; median confidence {np.median(raw):.3f} "
          f"({args.reference}: {np.median(reference):.3f}); wrote score_scale {scale:.4f} into {path}")
    return 0
