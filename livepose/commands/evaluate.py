"""`livepose eval [DATASET]`: accuracy (OKS AP, PCK) and temporal stability against ground truth, beside MediaPipe.

Image sets are scored twice: with the ground-truth person boxes (pose quality alone) and with the detector's
boxes (what the live app gets; predictions are matched to GT people by Hungarian assignment on OKS). MediaPipe
Pose gets the same person regions livepose crops from a box (its static mode), and, for the detector variant,
the whole image (its own detector; it finds one person at most).

Sequences with GT on every frame are scored for smoothing: raw keypoints, the Kalman and the One Euro filter
(run offline on the raw stream at the clip's frame rate, exactly as the live bank would), and MediaPipe in its
live tracking mode on the whole frames; acceleration error and lag are measured against the GT.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from livepose.commands.options import add_model_arguments
from livepose.config import EvalConfig, RenderConfig, SmoothConfig
from livepose.data import Dataset, data_root, load_dataset
from livepose.metrics import (Instance, acceleration_error, acceleration_errors, body_size, jitter, lag_frames, oks,
                              oks_ap, paired_bootstrap_ci, pck, warnings_ignored)
from livepose.pipeline import load_pipeline
from livepose.skeleton import KEYPOINT_NAMES, NUM_KEYPOINTS
from livepose.smooth import SmoothingBank, make_smoother
from livepose.sources import Frame
from livepose.tables import format_table, write_json

log = logging.getLogger(__name__)

DEFAULT_DATASETS = ("images_gt/annotations.pose17.json", "sequences_gt/*/gt.pose17.json")
BOX_MODES = ("gt", "detector")
#: under every sequence table and in --help: why "lag vs GT" can be negative and which lag to read instead
LAG_NOTE = ("lag vs GT: frames a stream trails the GT, from the peak of the cross-correlation of their velocities. "
            "On a short clip with noisy raw keypoints that peak is unstable and can fall below 0 (no filter runs "
            "ahead of the GT): there the clip cannot measure it. lag vs raw, how far a filter trails its own input, "
            "is the stable measure of a filter's delay.")


def find_datasets(spec: Path | None) -> list[Path]:
    """A pose17 file, a folder holding some (searched recursively), or the default real sets."""
    if spec is None:
        root = data_root()
        found = [p for pattern in DEFAULT_DATASETS for p in sorted(root.glob(pattern))]
        if not found:
            raise FileNotFoundError(f"no DATASET given and no default ground truth under {root} "
                                    f"({', '.join(DEFAULT_DATASETS)})")
        return found
    if spec.is_dir():
        found = sorted(spec.glob("*.pose17.json")) or sorted(spec.rglob("*.pose17.json"))
        if not found:
            raise FileNotFoundError(f"{spec} holds no *.pose17.json file")
        return found
    if not spec.is_file():
        raise FileNotFoundError(f"dataset {spec} does not exist")
    return [spec]


# --- predictions -----------------------------------------------------------------------------------------


@dataclass
class Predictions:
    """Per entry: (M, 17, 3) keypoints with a confidence column and (M,) person scores; M may differ from P."""

    keypoints: list[np.ndarray]
    scores: list[np.ndarray]


def _livepose(estimator, image: np.ndarray, boxes: np.ndarray, box_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    est = estimator(image, boxes)
    kps = np.concatenate([est.keypoints, est.scores[..., None]], axis=-1)
    return kps, box_scores * est.scores.mean(axis=1) if len(boxes) else np.zeros(0)


def predict(ds: Dataset, estimator, detector, rivals: dict, modes: tuple[str, ...]) -> dict[tuple[str, str], Predictions]:
    """Predictions of livepose and every rival x box mode on every entry of an image set.

    With GT boxes every system gets the same boxes; with the detector, livepose uses its own detector and each
    rival finds its person alone, as it would live.
    """
    systems = ("livepose", *rivals)
    preds = {(s, m): Predictions([], []) for s in systems for m in modes}
    for entry, image in zip(ds.entries, ds.images()):
        gt_scores = np.ones(len(entry.boxes), np.float32)
        if "gt" in modes:
            _add(preds[("livepose", "gt")], *_livepose(estimator, image, entry.boxes, gt_scores))
        if "detector" in modes:
            dets = detector(image)
            boxes = np.array([d.box_xywh for d in dets], np.float32).reshape(-1, 4)
            _add(preds[("livepose", "detector")],
                 *_livepose(estimator, image, boxes, np.array([d.score for d in dets], np.float32)))
        for name, rival in rivals.items():
            if "gt" in modes:
                kps = rival.on_boxes(image, entry.boxes)
                _add(preds[(name, "gt")], kps, np.nanmean(kps[..., 2], axis=1) if len(kps) else np.zeros(0))
            if "detector" in modes:
                found = rival.whole(image)
                kps = np.zeros((0, NUM_KEYPOINTS, 3), np.float32) if found is None else found[None]
                _add(preds[(name, "detector")], kps, kps[..., 2].mean(axis=1))
    return preds


def _add(p: Predictions, keypoints: np.ndarray, scores: np.ndarray) -> None:
    p.keypoints.append(np.asarray(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3))
    p.scores.append(np.asarray(scores, np.float32).reshape(-1))


def match_to_gt(pred: np.ndarray, gt: np.ndarray, boxes: np.ndarray, min_oks: float) -> np.ndarray:
    """(P, 17, 2) predictions aligned with the GT people (Hungarian on OKS); NaN where none matched."""
    out = np.full((len(gt), NUM_KEYPOINTS, 2), np.nan, np.float32)
    matched, _ = match_indices(pred, gt, boxes, min_oks)
    for c, r in enumerate(matched):
        if r >= 0:
            out[c] = pred[r, :, :2]
    return out


def match_indices(pred: np.ndarray, gt: np.ndarray, boxes: np.ndarray, min_oks: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian on OKS: per GT person the index of its prediction (-1: none over ``min_oks``), and the (M, P)
    OKS of every prediction against every GT person (0 for non-finite predictions)."""
    matched = np.full(len(gt), -1, int)
    sim = np.zeros((len(pred), len(gt)))
    finite = [i for i in range(len(pred)) if np.isfinite(pred[i, :, :2]).all()]
    if not finite or not len(gt):
        return matched, sim
    sim[finite] = [[oks(pred[i], g, float(b[2] * b[3])) for g, b in zip(gt, boxes)] for i in finite]
    rows, cols = linear_sum_assignment(-sim)
    for r, c in zip(rows, cols):
        if sim[r, c] >= min_oks:
            matched[c] = r
    return matched, sim


def score(ds: Dataset, p: Predictions, aligned: bool, cfg: EvalConfig) -> dict:
    """OKS AP (pycocotools) and PCK per joint for one system x box mode on an image set.

    ``aligned``: predictions are one per GT person in the same order (GT boxes); otherwise they are matched.
    """
    gt_inst, pred_inst, paired, gts = [], [], [], []
    for i, (entry, kps, s) in enumerate(zip(ds.entries, p.keypoints, p.scores)):
        gt_inst += [Instance(i, g, b) for g, b in zip(entry.gt, entry.boxes)]
        pred_inst += [Instance(i, k, _box_of(k), float(sc))
                      for k, sc in zip(kps, s) if np.isfinite(k[:, :2]).all()]
        paired.append(kps[:, :, :2] if aligned else match_to_gt(kps, entry.gt, entry.boxes, cfg.match_min_oks))
        gts.append(entry.gt)
    pred_all, gt_all = np.concatenate(paired), np.concatenate(gts)
    out = {"oks_ap": oks_ap(gt_inst, pred_inst), "people": len(gt_all),
           "found": int(np.isfinite(pred_all).all(axis=(1, 2)).sum()), "pck": {}}
    for alpha in cfg.pck_alphas:
        r = pck(pred_all, gt_all, alpha)
        out["pck"][str(alpha)] = {"overall": r.overall, "scored": r.scored,
                                  "per_joint": dict(zip(KEYPOINT_NAMES, r.per_joint))}
    return out


def _box_of(kps: np.ndarray) -> np.ndarray:
    lo, hi = np.nanmin(kps[:, :2], axis=0), np.nanmax(kps[:, :2], axis=0)
    return np.array([lo[0], lo[1], *(hi - lo)], np.float32)


# --- sequences -------------------------------------------------------------------------------------------


def raw_stream(ds: Dataset, images: list[np.ndarray], pipeline, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Unsmoothed keypoints (T, 17, 2) and scores (T, 17) of the GT person in every frame.

    "gt": the estimator on the GT box of each frame. "detector": the live pipeline (detector every N frames, ROI
    tracking in between, smoothing off); the tracked person best matching the GT each frame (NaN when none).
    """
    t_len = len(ds.entries)
    kps, scores = np.full((t_len, NUM_KEYPOINTS, 2), np.nan), np.zeros((t_len, NUM_KEYPOINTS))
    pipeline.reset()
    for t, (entry, image) in enumerate(zip(ds.entries, images)):
        if mode == "gt":
            est = pipeline.estimator(image, entry.boxes[:1])
            kps[t], scores[t] = est.keypoints[0], est.scores[0]
            continue
        res = pipeline.process(Frame(image, t, time.monotonic(), t / ds.fps))
        people = res.poses
        if len(people.raw_keypoints):
            sim = [oks(k, entry.gt[0], float(entry.boxes[0, 2] * entry.boxes[0, 3])) for k in people.raw_keypoints]
            best = int(np.argmax(sim))
            kps[t], scores[t] = people.raw_keypoints[best], people.raw_scores[best]
    return kps, scores


def smooth_stream(kps: np.ndarray, scores: np.ndarray, fps: float, cfg: SmoothConfig) -> np.ndarray:
    """The stream through a fresh smoother at the clip's frame rate (what the live bank computes)."""
    smoother = make_smoother(cfg)
    return np.stack([smoother.update(k, np.where(np.isfinite(k).all(axis=1), s, 0.0), t / fps)[0]
                     for t, (k, s) in enumerate(zip(kps, scores))])


def temporal_metrics(pred: np.ndarray, gt: np.ndarray, cfg: EvalConfig) -> dict:
    valid = gt[..., 2] > 0
    size = body_size(gt[..., :2], valid)
    j = jitter(pred, valid, size)
    out = {"accel_error_px": acceleration_error(pred, gt[..., :2], valid), "jitter_px": j.px,
           "jitter_norm": j.normalised, "lag_frames": _lag(gt[..., :2], pred, valid)}
    out["pck_per_joint"] = {}
    for a in cfg.pck_alphas:
        r = pck(pred, gt, a)
        out[f"pck@{a}"] = r.overall
        out["pck_per_joint"][str(a)] = dict(zip(KEYPOINT_NAMES, r.per_joint))
    out.update({f"pck_box@{a}": pck(pred, gt, a, norm="box").overall for a in cfg.pck_box_alphas})
    return out


def smoothed_metrics(raw: np.ndarray, smoothed: np.ndarray, gt: np.ndarray, cfg: EvalConfig) -> dict:
    """temporal_metrics of a smoothed stream, plus how many frames it trails the raw stream it came from and the
    95 % interval of its change in acceleration error against raw (block bootstrap over frames; below 0 = better)."""
    valid = gt[..., 2] > 0
    with warnings_ignored():
        per_frame = [np.nanmean(acceleration_errors(p, gt[..., :2], valid), axis=1) for p in (raw, smoothed)]
    ci = paired_bootstrap_ci(*per_frame, block=cfg.bootstrap_block, draws=cfg.bootstrap_draws)
    return {**temporal_metrics(smoothed, gt, cfg),
            "lag_behind_raw_frames": _lag(raw, smoothed, np.isfinite(raw).all(axis=-1)),
            "accel_error_vs_raw_ci": list(ci)}


def _lag(gt: np.ndarray, pred: np.ndarray, valid: np.ndarray) -> float:
    """Lag of the prediction behind the GT; NaN when no joint was predicted on consecutive frames."""
    try:
        return lag_frames(gt, pred, valid)
    except ValueError:          # every cross-correlation term was NaN
        return float("nan")


def tradeoff(kps: np.ndarray, scores: np.ndarray, gt: np.ndarray, fps: float, base: SmoothConfig,
             cfg: EvalConfig) -> list[dict]:
    """Jitter and lag of Kalman and One Euro over a sweep of their two knobs each (one knob at a time)."""
    sweeps = [("kalman", "measurement_noise", cfg.kalman_measurement_noise),
              ("kalman", "process_noise", cfg.kalman_process_noise),
              ("oneeuro", "oneeuro_min_cutoff", cfg.oneeuro_min_cutoff),
              ("oneeuro", "oneeuro_beta", cfg.oneeuro_beta)]
    points = []
    for method, knob, values in sweeps:
        for v in values:
            smooth_cfg = replace(base, method=method, **{knob: float(v)})
            m = smoothed_metrics(kps, smooth_stream(kps, scores, fps, smooth_cfg), gt, cfg)
            points.append({"method": method, "knob": knob, "value": float(v), **m})
    return points


def people_metrics(ds: Dataset, images: list[np.ndarray], pipeline, cfg: EvalConfig) -> dict:
    """The live pipeline on a multi-person sequence, scored per person-frame against the GT.

    Shown people are matched to the GT people of their frame (Hungarian on OKS over ``match_min_oks``), those in
    view first and the hidden ones to what is left (:func:`match_visible_first`). Recall counts the GT people marked
    visible. An unmatched shown person whose pose is close to a GT person's (``duplicate_min_oks``) is a duplicate,
    one whose drawn joints centre on no GT person's box a phantom; the rest (a head in view whose labelled joints
    are not, an unlabelled person behind a labelled one) neither. An id switch is a GT person in view matched to
    another id than the last one they were matched to. PCK of the live path (a missed person's joints count as
    wrong) is put beside PCK of the same network on the GT boxes. The images of an image set are each a stream of one frame.
    """
    found = people = duplicates = phantoms = switches = 0
    last_id: dict[int, int] = {}
    live, on_boxes, gts = [], [], []
    for t, (entry, image) in enumerate(zip(ds.entries, images)):
        if t == 0 or not ds.sequence:
            pipeline.reset()
            last_id = {}
        res = pipeline.process(Frame(image, t, time.monotonic(), t / ds.fps))
        pred = np.concatenate([res.poses.raw_keypoints, res.poses.raw_scores[..., None]], axis=-1)
        visible = np.ones(len(entry.gt), bool) if entry.visible is None else entry.visible
        matched, sim = match_visible_first(pred, entry, visible, cfg.match_min_oks)
        ids = np.arange(len(entry.gt)) if entry.track_ids is None else entry.track_ids
        found += int((matched[visible] >= 0).sum())
        people += int(visible.sum())
        unmatched = np.setdiff1d(np.arange(len(pred)), matched)
        duplicates += int((sim[unmatched].max(axis=1, initial=0.0) >= cfg.duplicate_min_oks).sum())
        phantoms += int((~_centred_in(pred[unmatched], entry.boxes).any(axis=1)).sum())
        for gid, m, seen in zip(ids, matched, visible):
            if m >= 0 and seen:
                switches += int(gid in last_id and last_id[gid] != res.track_ids[m])
                last_id[gid] = res.track_ids[m]
        shown = np.full((len(entry.gt), NUM_KEYPOINTS, 2), np.nan)
        shown[matched >= 0] = pred[matched[matched >= 0], :, :2]
        live.append(shown[visible])
        on_boxes.append(pipeline.estimator(image, entry.boxes[visible]).keypoints)
        gts.append(entry.gt[visible])
    frames = max(len(ds.entries), 1)
    out = {"person_frames": people, "recall": found / max(people, 1), "duplicates_per_frame": duplicates / frames,
           "phantoms_per_frame": phantoms / frames, "false_per_100": 100.0 * (duplicates + phantoms) / max(people, 1),
           "id_switches": switches}
    gt_all = np.concatenate(gts)
    for a in cfg.pck_alphas:
        out[f"pck_live@{a}"] = pck(np.concatenate(live), gt_all, a).overall
        out[f"pck_gt_boxes@{a}"] = pck(np.concatenate(on_boxes), gt_all, a).overall
    return out


def match_visible_first(pred: np.ndarray, entry: Entry, visible: np.ndarray, min_oks: float
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per GT person the index of its prediction, and the (M, P) OKS: the people in view are matched first, the
    hidden ones only to what is left. A person hidden behind another has her labelled joints where the front
    person's are, so matched together she could take the front person's pose and count a miss and a switch."""
    _, sim = match_indices(pred, entry.gt, entry.boxes, min_oks)       # every pair's OKS, for duplicates
    matched = np.full(len(entry.gt), -1, int)
    free = np.arange(len(pred))
    for group in (np.nonzero(visible)[0], np.nonzero(~visible)[0]):
        if len(group) and len(free):
            m, _ = match_indices(pred[free], entry.gt[group], entry.boxes[group], min_oks)
            matched[group[m >= 0]] = free[m[m >= 0]]
            free = np.setdiff1d(free, matched)
    return matched, sim


def _centred_in(pred: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(M, P): the centre of each pose's drawn joints (all where none is) lies in each xywh box."""
    conf = pred[..., 2:3] >= RenderConfig.min_score
    conf |= ~conf.any(axis=1, keepdims=True)
    centre = (pred[..., :2] * conf).sum(axis=1) / np.maximum(conf.sum(axis=1), 1)
    lo, hi = boxes[None, :, :2], boxes[None, :, :2] + boxes[None, :, 2:]
    return ((centre[:, None] >= lo) & (centre[:, None] <= hi)).all(axis=-1)


def people_lines(r: dict, cfg: EvalConfig) -> list[str]:
    """The table of :func:`people_metrics` for a report; nothing for a one-person sequence."""
    if "people" not in r:
        return []
    p = r["people"]
    heads = ["person-frames", "recall", "duplicates/frame", "phantoms/frame", "dup+phantom per 100", "id switches",
             *[f"PCK@{a} live" for a in cfg.pck_alphas], *[f"PCK@{a} GT boxes" for a in cfg.pck_alphas]]
    row = [p["person_frames"], p["recall"], p["duplicates_per_frame"], p["phantoms_per_frame"], p["false_per_100"],
           p["id_switches"], *[p[f"pck_live@{a}"] for a in cfg.pck_alphas],
           *[p[f"pck_gt_boxes@{a}"] for a in cfg.pck_alphas]]
    return ["", "people (live pipeline, every GT person of every frame):", format_table(heads, [row])]


def evaluate_sequence(ds: Dataset, pipeline, modes: tuple[str, ...], rivals: dict, cfg: EvalConfig) -> dict:
    images = list(ds.images())
    gt = np.stack([e.gt[0] if len(e.gt) else np.zeros((NUM_KEYPOINTS, 3), np.float32) for e in ds.entries])
    base = pipeline.cfg.smooth
    rows = {"ground truth": temporal_metrics(gt[..., :2], gt, cfg)}
    sweeps = {}
    for mode in modes:
        kps, scores = raw_stream(ds, images, pipeline, mode)
        rows[f"livepose {mode} raw"] = temporal_metrics(kps, gt, cfg)
        for method in ("kalman", "oneeuro"):
            smoothed = smooth_stream(kps, scores, ds.fps, replace(base, method=method))
            rows[f"livepose {mode} {method}"] = smoothed_metrics(kps, smoothed, gt, cfg)
        sweeps[mode] = tradeoff(kps, scores, gt, ds.fps, base, cfg)
    for name, rival in rivals.items():
        rows[f"{name} tracking"] = temporal_metrics(rival.stream(images)[..., :2], gt, cfg)
    people = {"people": people_metrics(ds, images, pipeline, cfg)} if max(len(e.gt) for e in ds.entries) > 1 else {}
    return {"kind": "sequence", "frames": len(images), "fps": ds.fps, "temporal": rows, "tradeoff": sweeps, **people,
            "smoothing": {"kalman": {"measurement_noise": base.measurement_noise, "process_noise": base.process_noise},
                          "oneeuro": {"min_cutoff": base.oneeuro_min_cutoff, "beta": base.oneeuro_beta}}}


def evaluate_images(ds: Dataset, pipeline, modes: tuple[str, ...], rivals: dict, cfg: EvalConfig) -> dict:
    preds = predict(ds, pipeline.estimator, pipeline.detector, rivals, modes)
    accuracy: dict[str, dict] = {}
    for (system, mode), p in preds.items():
        accuracy.setdefault(system, {})[mode] = score(ds, p, aligned=mode == "gt", cfg=cfg)
    return {"kind": "images", "images": len(ds.entries), "people": int(sum(len(e.gt) for e in ds.entries)),
            "accuracy": accuracy}


# --- output ----------------------------------------------------------------------------------------------


def report(name: str, r: dict, cfg: EvalConfig) -> str:
    a0 = str(cfg.pck_alphas[0])
    if r["kind"] == "images":
        cols = [(s, m) for s, modes in r["accuracy"].items() for m in modes]
        heads = [f"{s} {m}" for s, m in cols]
        acc = r["accuracy"]
        summary = [[k] + [acc[s][m]["oks_ap"][k] for s, m in cols] for k in ("AP", "AP50", "AP75", "AR")]
        summary += [[f"PCK@{a}"] + [acc[s][m]["pck"][str(a)]["overall"] for s, m in cols] for a in cfg.pck_alphas]
        summary += [["people found"] + [f"{acc[s][m]['found']}/{acc[s][m]['people']}" for s, m in cols]]
        joints = [[j] + [acc[s][m]["pck"][a0]["per_joint"][j] for s, m in cols] for j in KEYPOINT_NAMES]
        return "\n".join([f"{name}: {r['images']} images, {r['people']} people",
                          format_table(["metric", *heads], summary), "",
                          format_table([f"PCK@{a0} per joint", *heads], joints)])
    keys = ["accel_error_px", "accel_error_vs_raw_ci", "jitter_px", "jitter_norm", "lag_frames",
            "lag_behind_raw_frames", *[f"pck@{a}" for a in cfg.pck_alphas], *[f"pck_box@{a}" for a in cfg.pck_box_alphas]]
    rows = [[k] + [_interval(v.get(c, float("nan"))) for c in keys] for k, v in r["temporal"].items()]
    # per joint for the unsmoothed streams and the rival: what the model card compares
    streams = [k for k in r["temporal"] if k.endswith(" raw") or k.endswith(" tracking")]
    per_joint = {k: r["temporal"][k]["pck_per_joint"][a0] for k in streams}
    joints = [[j] + [per_joint[k][j] for k in streams] for j in KEYPOINT_NAMES
              if any(np.isfinite(per_joint[k][j]) for k in streams)]
    return "\n".join([f"{name}: {r['frames']} frames at {r['fps']:g} fps (GT on every frame)",
                      format_table(["stream", "accel err px", "vs raw, 95% CI", "jitter px", "jitter/torso",
                                    "lag vs GT frames", "lag vs raw frames", *[f"PCK@{a}" for a in cfg.pck_alphas],
                                    *[f"PCK@{a} box" for a in cfg.pck_box_alphas]], rows),
                      textwrap.fill(LAG_NOTE, 118), "",
                      format_table([f"PCK@{a0} per joint", *streams], joints)] + people_lines(r, cfg))


def _interval(value):
    """A [lo, hi] pair as one table cell; anything else unchanged."""
    return f"[{value[0]:+.1f}, {value[1]:+.1f}]" if isinstance(value, (list, tuple)) else value


def plot_tradeoff(results: dict, path: Path) -> None:
    """Jitter vs lag behind the raw stream for each filter's sweep, one panel per sequence x box mode.

    The lag is measured against the raw stream, not the GT: on a noisy raw stream the cross-correlation with the
    GT has no stable peak. Raw sits at lag 0; the GT's and MediaPipe's own jitter are drawn as levels.
    """
    import matplotlib  # only for --plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(name, mode, r) for name, r in results.items() if r["kind"] == "sequence" for mode in r["tradeoff"]]
    if not panels:
        raise ValueError("--plot needs a sequence with GT on every frame (e.g. sequences_gt/*/gt.pose17.json)")
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5), squeeze=False)
    for ax, (name, mode, r) in zip(axes[0], panels):
        points = r["tradeoff"][mode]
        for method, knob in dict.fromkeys((p["method"], p["knob"]) for p in points):
            pts = [p for p in points if p["method"] == method and p["knob"] == knob]
            ax.plot([p["lag_behind_raw_frames"] for p in pts], [p["jitter_px"] for p in pts], "o-",
                    label=f"{method}: {knob}")
            for p in pts:
                ax.annotate(f"{p['value']:g}", (p["lag_behind_raw_frames"], p["jitter_px"]), fontsize=7, alpha=0.7)
        ax.plot([0.0], [r["temporal"][f"livepose {mode} raw"]["jitter_px"]], "k*", markersize=10, label="raw")
        for label, style in (("mediapipe tracking", "r--"), ("ground truth", "g:")):
            if label in r["temporal"]:
                ax.axhline(r["temporal"][label]["jitter_px"], linestyle=style[1:], color=style[0], label=label)
        ax.set(xlabel="lag behind raw (frames)", ylabel="jitter (mean |acceleration|, px/frame²)",
               title=f"{name} ({mode} boxes)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = LAG_NOTE
    p.add_argument("dataset", nargs="?", type=Path,
                   help="a *.pose17.json file or a folder holding some (default: ../shared/data images_gt and "
                        "the JHMDB clip of sequences_gt)")
    p.add_argument("--boxes", choices=("gt", "detector", "both"), default="both",
                   help="person boxes: ground truth, the detector's, or both (separately)")
    p.add_argument("--last", type=int, help="only the last N images of each dataset (e.g. LSPet's held-out 200: "
                   "training configs hold them out with holdout_last)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--plot", type=Path, help="draw the jitter-vs-lag trade-off of the filters to this image")
    p.add_argument("--rival", default="mediapipe,movenet",
                   help="rivals measured in the same run, comma-separated: mediapipe (Pose full), movenet (Thunder)")
    p.add_argument("--no-rival", action="store_true", help="skip every rival")
    add_model_arguments(p)


def main(args: argparse.Namespace) -> int:
    cfg = EvalConfig()
    try:
        paths = find_datasets(args.dataset)
        datasets = [load_dataset(p) for p in paths]
        if args.last:
            for ds in datasets:
                ds.entries = ds.entries[-args.last:]
    except (OSError, ValueError, KeyError) as exc:
        print(f"livepose eval: {exc}", file=sys.stderr)
        return 2
    for ds in datasets:
        if ds.missing:
            print(f"livepose eval: {ds.path}: skipping {len(ds.missing)} missing images (first: {ds.missing[0]})",
                  file=sys.stderr)
    if not any(ds.entries for ds in datasets):
        print("livepose eval: no image of the dataset is there to evaluate", file=sys.stderr)
        return 2
    datasets = [ds for ds in datasets if ds.entries]
    loaded = load_pipeline(args, "livepose eval")
    if loaded is None:
        return 2
    pipeline, model_name = loaded
    modes = BOX_MODES if args.boxes == "both" else (args.boxes,)
    # Raw keypoints only (no filter even in the background); the filters are applied offline to the raw stream.
    pipeline.bank = SmoothingBank(replace(pipeline.cfg.smooth, method="none"), pipeline.bank.num_joints)
    from livepose.commands.rivals import RIVALS  # MediaPipe: loaded only when a rival is compared

    names = [] if args.no_rival else [n.strip() for n in args.rival.split(",") if n.strip()]
    unknown = [n for n in names if n not in RIVALS]
    if unknown:
        print(f"livepose eval: unknown rival {unknown[0]!r} (choose from {', '.join(RIVALS)})", file=sys.stderr)
        return 2
    rivals = {n: RIVALS[n]() for n in names}
    results, texts = {}, []
    try:
        for ds in datasets:
            evaluate = evaluate_sequence if ds.sequence else evaluate_images
            results[ds.name] = {"path": str(ds.path), **evaluate(ds, pipeline, modes, rivals, cfg)}
            texts.append(report(ds.name, results[ds.name], cfg))
    finally:
        for rival in rivals.values():
            rival.close()
    print(f"livepose eval: model {model_name}\n\n" + "\n\n".join(texts))
    if args.json:
        write_json(args.json, {"model": model_name, "pck_alphas": list(cfg.pck_alphas), "datasets": results})
        print(f"wrote {args.json}")
    if args.plot:
        try:
            plot_tradeoff(results, args.plot)
        except ValueError as exc:
            print(f"livepose eval: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {args.plot}")
    return 0
