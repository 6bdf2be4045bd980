"""`livepose synth`: multi-person test videos with exact ground truth, made from annotated stills.

No multi-person video with per-frame GT exists in the shared data, so one is made (issue 28): an annotated crowd
still (images_gt: CrowdPose, AI Challenger, COCO) is the scene, a camera pans and zooms over it with a small shake,
and people cut from other annotated stills walk past each other in front of it. Everything is an affine map of a
labelled pixel, so the GT of every frame is exact: the scene's people move with the camera matrix, each walker with
its own path composed with the camera. Joints behind a walker pasted in front are marked occluded (v = 1), joints
out of view unlabelled (v = 0); a person counts as visible in a frame when at least ``min_visible`` of their
labelled joints are in view and not hidden.

A walker is cut with a soft matte: the ellipse of their box joined with thick limbs along their labelled skeleton,
so little of the background they were photographed against comes with them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from livepose.config import SynthConfig
from livepose.data import data_root, keypoint_box, read_rgb
from livepose.skeleton import LIMBS, NUM_KEYPOINTS

#: images_gt stills whose every person is labelled (an unlabelled one would score as a phantom): scenes
SCENES = ("aic/ff945ae2e729f24eea992814639d59b3bdec8bd8.jpg", "coco_val2017/000000197388.jpg",
          "aic/fa436c914fe4a8ec1ec5474af4d3820b84d17561.jpg", "crowdpose/103319.jpg")
#: ... and single, fully labelled, upright people to paste as walkers
WALKERS = ("h36m/S7_Greeting.55011271_000396.jpg", "coco_val2017/000000000785.jpg", "mpii/004645041.jpg")


@dataclass
class Still:
    """An annotated image: RGB pixels, (P, 17, 3) keypoints and (P, 4) xywh boxes."""

    image: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray


@dataclass
class Sprite:
    """One person cut from a still: RGB patch, matte (0..1) and their keypoints and box in patch pixels."""

    rgb: np.ndarray
    alpha: np.ndarray
    keypoints: np.ndarray      # (17, 3)
    box: np.ndarray            # (4,) xywh


@dataclass
class Sequence:
    """The video and its GT, person-major: scene people first, then the walkers (front first)."""

    frames: np.ndarray         # (T, H, W, 3) uint8 RGB
    keypoints: np.ndarray      # (T, P, 17, 3): x, y, v (0 unlabelled or out of view, 1 hidden, 2 seen)
    boxes: np.ndarray          # (T, P, 4) xywh, clipped to the frame
    visible: np.ndarray        # (T, P) counts as a person to be found
    cameras: np.ndarray        # (T, 2, 3) still -> frame
    fps: float


def load_stills(pose17: Path, files: tuple[str, ...]) -> list[Still]:
    """The named images of a pose17 image set, with all their people (labelled or not)."""
    d = json.loads(Path(pose17).read_text())
    items = {item["file"]: item for item in d["images"]}
    stills = []
    for name in files:
        item = items[name]
        kps = np.array([p["keypoints"] for p in item["people"]], np.float64).reshape(-1, NUM_KEYPOINTS, 3)
        boxes = np.array([p["bbox"] for p in item["people"]], np.float64).reshape(-1, 4)
        stills.append(Still(read_rgb(Path(pose17).parent / name), kps, boxes))
    return stills


def transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """A 2x3 affine map applied to (..., 2) points."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def cut_sprite(still: Still, person: int, height: float, cfg: SynthConfig) -> Sprite:
    """Person ``person`` of a still, scaled to ``height`` px, with a soft matte around their body. Their box is
    their keypoint box padded 10 % (some datasets' boxes are loose), which the matte's ellipse fills."""
    kps = still.keypoints[person].copy()
    box = keypoint_box(kps).astype(np.float64)
    scale = height / box[3]
    pad = cfg.feather_px * 2 / scale + cfg.limb_width * box[3]
    x0, y0 = np.maximum(np.floor(box[:2] - pad), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(box[:2] + box[2:] + pad), still.image.shape[1::-1]).astype(int)
    to_patch = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]])
    w, h = round((x1 - x0) * scale), round((y1 - y0) * scale)
    rgb = cv2.warpAffine(still.image, to_patch, (w, h), flags=cv2.INTER_AREA)
    kps[:, :2] = transform(kps[:, :2], to_patch)
    pbox = np.concatenate([transform(box[:2], to_patch), box[2:] * scale])
    alpha = np.zeros((h, w), np.float32)
    centre = tuple(int(v) for v in np.round(pbox[:2] + pbox[2:] / 2))
    cv2.ellipse(alpha, centre, tuple(int(v) for v in np.round(pbox[2:] / 2)), 0, 0, 360, 1.0, -1)
    thick = max(1, round(cfg.limb_width * pbox[3]))
    for a, b in LIMBS:
        if kps[a, 2] > 0 and kps[b, 2] > 0:
            cv2.line(alpha, tuple(int(v) for v in kps[a, :2]), tuple(int(v) for v in kps[b, :2]), 1.0, thick)
    k = 2 * round(cfg.feather_px) + 1
    alpha = cv2.GaussianBlur(alpha, (k, k), 0)
    kps[kps[:, 2] == 0, :2] = 0.0
    return Sprite(rgb, alpha, kps, pbox)


def camera_matrices(still_hw: tuple[int, int], cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """(T, 2, 3) still -> frame: zoom from ``cfg.zoom[0]`` to ``[1]``, a horizontal pan, a small shake; the view
    never leaves the still (no border, no mirrored people)."""
    sh, sw = still_hw
    oh, ow = cfg.size
    fit = max(ow / sw, oh / sh)
    t = np.linspace(0.0, 1.0, cfg.frames)
    mats = np.empty((cfg.frames, 2, 3))
    shake = rng.normal(0.0, cfg.shake_px, (cfg.frames, 2))
    for i, u in enumerate(t):
        s = fit * (cfg.zoom[0] + (cfg.zoom[1] - cfg.zoom[0]) * u)
        half = np.array([ow, oh]) / (2 * s)                                   # half the view, still pixels
        centre = np.array([sw / 2 + cfg.pan * sw * (u - 0.5), sh / 2]) + shake[i] / s
        centre = np.clip(centre, half, np.array([sw, sh]) - half)
        mats[i] = [[s, 0, ow / 2 - s * centre[0]], [0, s, oh / 2 - s * centre[1]]]
    return mats


def half_view_height(still_hw: tuple[int, int], cfg: SynthConfig) -> float:
    """Half the height, in still pixels, of the camera's tightest view (the last, most zoomed frame)."""
    sh, sw = still_hw
    oh, ow = cfg.size
    return oh / (2 * max(ow / sw, oh / sh) * max(cfg.zoom))


def walker_heights(still_hw: tuple[int, int], n: int, cfg: SynthConfig) -> np.ndarray:
    """(n,) walker heights in still pixels: the front one fills ``walker_height`` of the tightest view."""
    return 2 * cfg.walker_height * half_view_height(still_hw, cfg) * cfg.back_scale ** np.arange(n)


def walker_paths(still_hw: tuple[int, int], sprites: list[Sprite], cfg: SynthConfig) -> np.ndarray:
    """(T, walkers, 2) top-left corner of each walker's patch in the still: alternately left-to-right and back,
    all crossing at mid-clip, each centred on the horizon (the still's middle row), so a farther, smaller walker
    stands higher."""
    sh, sw = still_hw
    u = np.linspace(-0.5, 0.5, cfg.frames)
    out = np.empty((cfg.frames, len(sprites), 2))
    for k, sp in enumerate(sprites):
        direction = 1.0 if k % 2 == 0 else -1.0
        centre = sp.box[:2] + sp.box[2:] / 2
        out[:, k, 0] = sw / 2 + direction * cfg.walk * sw * u - centre[0]
        out[:, k, 1] = sh / 2 - centre[1]
    return out


def _paste(world: np.ndarray, sprite: Sprite, corner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alpha-blend a sprite into ``world`` (float, in place) with its patch's top-left at integer ``corner``;
    returns the offset applied to its keypoints and the sprite's matte laid on the world."""
    x, y = (int(v) for v in np.round(corner))
    h, w = sprite.alpha.shape
    wh, ww = world.shape[:2]
    matte = np.zeros((wh, ww), np.float32)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, ww), min(y + h, wh)
    if x0 < x1 and y0 < y1:
        a = sprite.alpha[y0 - y:y1 - y, x0 - x:x1 - x]
        world[y0:y1, x0:x1] = (1 - a[..., None]) * world[y0:y1, x0:x1] + a[..., None] * sprite.rgb[y0 - y:y1 - y,
                                                                                                      x0 - x:x1 - x]
        matte[y0:y1, x0:x1] = a
    return np.array([x, y], np.float64), matte


def _under(matte: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(..., 2) world points lying under a matte (over half opaque)."""
    xy = np.round(points).astype(int)
    inside = (xy[..., 0] >= 0) & (xy[..., 1] >= 0) & (xy[..., 0] < matte.shape[1]) & (xy[..., 1] < matte.shape[0])
    out = np.zeros(points.shape[:-1], bool)
    out[inside] = matte[xy[inside][:, 1], xy[inside][:, 0]] > 0.5
    return out


def make_sequence(scene: Still, walkers: list[Still], cfg: SynthConfig = SynthConfig()) -> Sequence:
    """The scene under a moving camera with ``walkers`` (the first person of each still) walking past each other;
    walker 0 walks in front."""
    rng = np.random.default_rng(cfg.seed)
    hw = scene.image.shape[:2]
    heights = walker_heights(hw, len(walkers), cfg)
    sprites = [cut_sprite(still, 0, h, cfg) for still, h in zip(walkers, heights)]
    paths = walker_paths(hw, sprites, cfg)
    cams = camera_matrices(hw, cfg, rng)
    oh, ow = cfg.size
    n_scene = len(scene.keypoints)
    sprite_kps = np.array([s.keypoints for s in sprites]).reshape(-1, NUM_KEYPOINTS, 3)
    sprite_boxes = np.array([s.box for s in sprites]).reshape(-1, 4)
    labelled = np.concatenate([scene.keypoints[..., 2], sprite_kps[..., 2]]) > 0
    frames = np.empty((cfg.frames, oh, ow, 3), np.uint8)
    kps = np.zeros((cfg.frames, len(labelled), NUM_KEYPOINTS, 3))
    boxes = np.zeros((cfg.frames, len(labelled), 4))
    for t in range(cfg.frames):
        world = scene.image.astype(np.float32)
        points = np.concatenate([scene.keypoints[..., :2], sprite_kps[..., :2]])
        corners = np.concatenate([scene.boxes, sprite_boxes])
        hidden = np.zeros(labelled.shape, bool)
        for k in reversed(range(len(sprites))):                      # back to front
            offset, matte = _paste(world, sprites[k], paths[t, k])
            points[n_scene + k] += offset
            corners[n_scene + k, :2] += offset
            behind = np.r_[np.arange(n_scene), n_scene + np.arange(k + 1, len(sprites))]
            hidden[behind] |= _under(matte, points[behind])
        frames[t] = cv2.warpAffine(np.clip(world, 0, 255).astype(np.uint8), cams[t], (ow, oh), flags=cv2.INTER_LINEAR)
        xy = transform(points, cams[t])
        in_view = (xy[..., 0] >= 0) & (xy[..., 1] >= 0) & (xy[..., 0] < ow) & (xy[..., 1] < oh)
        kps[t, ..., :2] = np.where((labelled & in_view)[..., None], xy, 0.0)
        kps[t, ..., 2] = np.where(labelled & in_view, np.where(hidden, 1, 2), 0)
        box_xy = transform(np.stack([corners[:, :2], corners[:, :2] + corners[:, 2:]], axis=1), cams[t])
        lo = np.clip(box_xy.min(axis=1), 0, [ow, oh])
        boxes[t] = np.concatenate([lo, np.clip(box_xy.max(axis=1), 0, [ow, oh]) - lo], axis=1)
    seen = (kps[..., 2] == 2).sum(axis=-1) / np.maximum(labelled.sum(axis=-1), 1)
    return Sequence(frames, kps.astype(np.float32), boxes.astype(np.float32), seen >= cfg.min_visible, cams, cfg.fps)


def write_sequence(seq: Sequence, out_dir: Path, name: str) -> Path:
    """PNG frames and a pose17-v1 sequence file (`livepose eval OUT_DIR` scores it). Each person has its
    ``track_id`` and a ``visible`` flag (counts as a person to be found in that frame)."""
    out_dir = Path(out_dir)
    (out_dir / "frames").mkdir(parents=True, exist_ok=True)
    frames = []
    for t, image in enumerate(seq.frames):
        rel = f"frames/{t:05d}.png"
        cv2.imwrite(str(out_dir / rel), image[:, :, ::-1])
        people = [{"keypoints": seq.keypoints[t, p].round(2).tolist(), "bbox": seq.boxes[t, p].round(2).tolist(),
                   "track_id": p, "visible": bool(seq.visible[t, p])}
                  for p in range(seq.keypoints.shape[1]) if (seq.keypoints[t, p, :, 2] > 0).any()]
        frames.append({"frame_index": t, "file": rel, "people": people})
    path = out_dir / "gt.pose17.json"
    path.write_text(json.dumps({"format": "pose17-v1", "sequence": name, "fps": seq.fps, "frames": frames,
                                "source": "livepose synth: annotated stills under a known camera, exact GT",
                                "camera_matrices": seq.cameras.round(6).tolist()}))
    return path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="folder to write frames/ and gt.pose17.json into")
    p.add_argument("--images-gt", type=Path, help="the annotated stills (default: ../shared/data/images_gt)")
    p.add_argument("--scene", type=int, default=0, help=f"which scene: 0-{len(SCENES) - 1} of {', '.join(SCENES)}")
    p.add_argument("--walkers", type=int, default=SynthConfig.walkers, help=f"at most {len(WALKERS)}")
    p.add_argument("--frames", type=int, default=SynthConfig.frames)
    p.add_argument("--seed", type=int, default=SynthConfig.seed)


def main(args: argparse.Namespace) -> int:
    from dataclasses import replace

    pose17 = (args.images_gt or data_root() / "images_gt") / "annotations.pose17.json"
    if not pose17.is_file() or not 0 <= args.scene < len(SCENES) or not 0 <= args.walkers <= len(WALKERS):
        print(f"livepose synth: need {pose17}, --scene 0-{len(SCENES) - 1} and --walkers 0-{len(WALKERS)}",
              file=sys.stderr)
        return 2
    cfg = replace(SynthConfig(), frames=args.frames, seed=args.seed, walkers=args.walkers)
    scene, *walkers = load_stills(pose17, (SCENES[args.scene],) + WALKERS[:cfg.walkers])
    seq = make_sequence(scene, walkers, cfg)
    path = write_sequence(seq, args.out, f"synth_scene{args.scene}_seed{args.seed}")
    print(f"wrote {cfg.frames} frames, {seq.keypoints.shape[1]} people ({seq.visible.mean():.2f} of person-frames "
          f"visible) to {path}")
    return 0
