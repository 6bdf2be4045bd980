"""MediaPipe Pose (BlazePose, 33 landmarks) mapped to COCO-17: the rival `livepose bench` and `eval` measure against.

It reuses the training teacher's call (upscaling of small images, 33 -> COCO-17 mapping) and adds the two ways it
is compared: tracking mode on whole frames (``static_image_mode=False``, how MediaPipe runs live, with its own
landmark smoothing) and static mode on the same person regions livepose gets from a box.
"""

from __future__ import annotations

import numpy as np

from livepose.config import CropConfig, RivalConfig
from livepose.crop import affine_matrix, box_to_region, transform_points, warp_crops
from livepose.quiet import native_chatter_filtered
from livepose.skeleton import NUM_KEYPOINTS
from livepose.train.teacher import BlazePoseTeacher


class MediaPipePose(BlazePoseTeacher):
    """``pose(image_rgb)`` -> (17, 3) x, y (pixels), visibility, or None when MediaPipe finds nobody."""

    def __init__(self, tracking: bool, cfg: RivalConfig = RivalConfig()) -> None:
        self.tracking = tracking
        self.cfg = cfg
        self._pose = None               # MediaPipe's graph, made by the first call
        self._fresh = True              # the graph has given no result since it was made or restarted

    def __call__(self, image_rgb: np.ndarray, box_xywh: np.ndarray | None = None) -> np.ndarray | None:
        """The teacher's call. A new or restarted graph starts its models on threads of its own, which print absl
        lines at some moment before its first result: that first call, and making the graph, leave them out."""
        if not self._fresh:
            return super().__call__(image_rgb, box_xywh)
        import mediapipe as mp  # heavy (its graphs and TensorFlow Lite runtime): only when this rival runs

        with native_chatter_filtered():
            if self._pose is None:
                self._pose = mp.solutions.pose.Pose(
                    static_image_mode=not self.tracking, model_complexity=self.cfg.model_complexity,
                    smooth_landmarks=True, min_detection_confidence=self.cfg.min_detection_confidence,
                    min_tracking_confidence=self.cfg.min_tracking_confidence)
            self._fresh = False
            return super().__call__(image_rgb, box_xywh)

    def reset(self) -> None:
        """Forget the tracked person (a new run over the same or another video): the graph restarts."""
        if self._pose is not None:
            with native_chatter_filtered():
                self._pose.reset()
            self._fresh = True

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose, self._fresh = None, True

    def __enter__(self) -> MediaPipePose:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def missing_pose() -> np.ndarray:
    """What a person MediaPipe did not find scores as: NaN positions (wrong in PCK), visibility 0."""
    out = np.full((NUM_KEYPOINTS, 3), np.nan, np.float32)
    out[:, 2] = 0.0
    return out


def on_regions(pose: MediaPipePose, image_rgb: np.ndarray, boxes_xywh: np.ndarray,
               crop_cfg: CropConfig = CropConfig(), cfg: RivalConfig = RivalConfig()) -> np.ndarray:
    """MediaPipe on each box's top-down region (the crop livepose would get): (N, 17, 3) in image pixels."""
    boxes = np.asarray(boxes_xywh, np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros((0, NUM_KEYPOINTS, 3), np.float32)
    centres, sizes = box_to_region(boxes, crop_cfg)
    crops, _ = warp_crops(image_rgb, centres, sizes, cfg.crop_size)
    out = []
    for crop, centre, size in zip(crops, centres, sizes):
        found = pose(crop)
        if found is None:
            out.append(missing_pose())
            continue
        back = affine_matrix(centre, size, cfg.crop_size, inverse=True)
        found[:, :2] = transform_points(found[:, :2], back)
        out.append(found)
    return np.stack(out).astype(np.float32)


class MediaPipeRival:
    """MediaPipe Pose full as an eval rival: on livepose's boxes, alone on a whole image, and tracking a clip."""

    name = "mediapipe"

    def __init__(self) -> None:
        self._static = MediaPipePose(tracking=False)

    def on_boxes(self, image_rgb: np.ndarray, boxes_xywh: np.ndarray) -> np.ndarray:
        return on_regions(self._static, image_rgb, boxes_xywh)

    def whole(self, image_rgb: np.ndarray) -> np.ndarray | None:
        return self._static(image_rgb)

    def stream(self, images: list[np.ndarray]) -> np.ndarray:
        """Live tracking mode (its own landmark smoothing) over a clip: (T, 17, 3)."""
        with MediaPipePose(tracking=True) as pose:
            return np.stack([found if (found := pose(im)) is not None else missing_pose() for im in images])

    def close(self) -> None:
        self._static.close()


class MoveNetTracker:
    """MoveNet Thunder live: each frame cropped around the previous frame's keypoints (its own cropping)."""

    def __init__(self, cfg: RivalConfig = RivalConfig()) -> None:
        from livepose.movenet import MoveNetThunder  # its interpreter loads only when this rival runs

        with native_chatter_filtered():
            self.net = MoveNetThunder()
        self.min_score = cfg.movenet_min_score
        self._previous: np.ndarray | None = None

    def __call__(self, image_rgb: np.ndarray) -> np.ndarray | None:
        self._previous = self.net.find(image_rgb, self._previous, min_score=self.min_score)
        return self._previous

    def reset(self) -> None:
        self._previous = None

    def close(self) -> None:
        self.reset()

    def __enter__(self) -> MoveNetTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MoveNetRival:
    """MoveNet Thunder (assets/movenet_thunder.tflite) as an eval rival, the same three ways as MediaPipe."""

    name = "movenet"

    def __init__(self, cfg: RivalConfig = RivalConfig()) -> None:
        self._tracker = MoveNetTracker(cfg)

    def on_boxes(self, image_rgb: np.ndarray, boxes_xywh: np.ndarray) -> np.ndarray:
        return self._tracker.net(image_rgb, np.asarray(boxes_xywh, np.float32).reshape(-1, 4))

    def whole(self, image_rgb: np.ndarray) -> np.ndarray | None:
        return self._tracker.net.find(image_rgb, min_score=self._tracker.min_score)

    def stream(self, images: list[np.ndarray]) -> np.ndarray:
        """Tracking over a clip: (T, 17, 3)."""
        self._tracker.reset()
        return np.stack([found if (found := self._tracker(im)) is not None else missing_pose() for im in images])

    def close(self) -> None:
        self._tracker.close()


RIVALS = {"mediapipe": MediaPipeRival, "movenet": MoveNetRival}
#: live trackers of the rivals, for `livepose bench`: ``tracker(image)`` -> (17, 3) or None, ``reset()``
TRACKERS = {"mediapipe": lambda cfg: MediaPipePose(tracking=True, cfg=cfg), "movenet": MoveNetTracker}
