"""One config dataclass per stage; the defaults live here and nowhere else.

Stages take their config as an argument (never a global), so tests and the app can run several
differently configured pipelines side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelConfig:
    """SimpleBaseline network shape (Xiao et al. 2018)."""

    depth: int = 18                       # ResNet depth: 18, 34, 50, 101 or 152
    input_size: tuple[int, int] = (256, 192)  # (height, width) of a person crop
    num_joints: int = 17
    deconv_filters: int = 256
    num_deconv: int = 3
    bn_epsilon: float = 1e-5              # PyTorch's BatchNorm default, so imported weights match exactly
    bn_momentum: float = 0.9              # Keras convention: 1 - PyTorch's 0.1

    @property
    def heatmap_size(self) -> tuple[int, int]:
        stride = 32 // (2 ** self.num_deconv)
        return self.input_size[0] // stride, self.input_size[1] // stride


@dataclass(frozen=True)
class DetectConfig:
    """BlazePose person detector (ships inside the mediapipe wheel)."""

    score_threshold: float = 0.5
    nms_iou: float = 0.3
    max_people: int = 20                  # cap per frame; keeps time per frame bounded in crowds
    tiles: int = 1                        # 1: whole frame; 2: also a 2x2 grid of overlapping tiles (small people)
    box_aspect: float = 0.55              # width / height of a person box derived from the alignment points
    num_threads: int = 2


@dataclass(frozen=True)
class CropConfig:
    """Top-down crop: a box becomes a centre and a scale of fixed aspect, then an affine warp."""

    aspect: float = 0.75                  # width / height, 3:4 as the 256x192 input
    padding: float = 1.25                 # context around the box, as in SimpleBaseline


@dataclass(frozen=True)
class DecodeConfig:
    """Heatmap -> keypoints."""

    refine: str = "quarter"               # "quarter" (quarter-pixel shift) or "dark" (Taylor expansion)
    flip_test: bool = False               # average with the horizontally flipped crop (2x the network cost)
    dark_kernel: int = 11                 # Gaussian blur applied before DARK refinement (odd)


@dataclass(frozen=True)
class TrackConfig:
    """Track identities across frames."""

    min_iou: float = 0.3                  # below this similarity a detection never matches a track
    min_hits: int = 2                     # a track is confirmed (shown) after this many matched frames
    max_misses: int = 10                  # a track is ended after this many frames without a match
    detect_every: int = 10                # run the detector at least every N frames to catch newcomers
    min_keypoint_score: float = 0.3       # keypoints above this define the next frame's ROI
    min_track_score: float = 0.25         # mean keypoint score under which a track's ROI is not trusted


@dataclass(frozen=True)
class SmoothConfig:
    """Per-joint temporal filtering of keypoints."""

    method: str = "kalman"                # "kalman", "oneeuro" or "none"
    motion_model: str = "cv"              # Kalman: "cv" constant velocity, "ca" constant acceleration
    process_noise: float = 3000.0         # Kalman: acceleration spectral density, px^2/s^3; higher follows faster
    measurement_noise: float = 4.0        # Kalman: keypoint noise std in px at confidence 1; higher smooths more
    min_score: float = 0.2                # below this a keypoint is treated as missing (predict only)
    max_predict_s: float = 0.3            # a joint unseen for longer is dropped
    oneeuro_min_cutoff: float = 1.0       # One Euro: Hz at rest; lower smooths more
    oneeuro_beta: float = 0.05            # One Euro: speed coefficient; higher follows faster
    oneeuro_d_cutoff: float = 1.0


@dataclass(frozen=True)
class PipelineConfig:
    """How the stages are put together."""

    model: ModelConfig = field(default_factory=ModelConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8)  # fixed batch shapes the network is compiled for
