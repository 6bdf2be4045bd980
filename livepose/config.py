"""One config dataclass per stage; the defaults live here and nowhere else.

Stages take their config as an argument (never a global), so tests and the app can run several
differently configured pipelines side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelConfig:
    """SimpleBaseline network shape (Xiao et al. 2018)."""

    backbone: str = "resnet"              # "resnet" (depth below) or "mobilenetv2" (MoveNet Thunder's, pose-pretrained)
    depth: int = 18                       # ResNet depth: 18, 34, 50, 101 or 152
    mobilenet_alpha: float = 1.75         # MobileNetV2 width multiplier (MoveNet Thunder's)
    mobilenet_last_filters: int = 1280    # MoveNet's Conv_1 keeps 1280 channels (Keras would widen it to 2240)
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
    box_aspect: float = 0.45              # width / height of a person box derived from the alignment points
    box_scale: float = 0.95               # person box height / mediapipe's body ROI side (2 |kp1 - kp0|)
    tile_overlap: float = 0.25            # tiles are (1 + this) / tiles of the frame on a side
    refine_boxes: bool = True             # tighten each box to the person's silhouette (selfie segmentation)
    mask_threshold: float = 0.3           # segmentation probability counted as person
    mask_grow: float = 1.0                # segmented square = this x mediapipe's body ROI side
    mask_min_fill: float = 0.05           # a silhouette must cover this share of the box, else the box is kept
    model_path: str = ""                  # "" = pose_detection.tflite inside the installed mediapipe wheel
    num_threads: int = 2


@dataclass(frozen=True)
class CocoDetectConfig:
    """NanoDet multi-person detector (COCO 'person' class; the .tflite ships in assets/)."""

    score_threshold: float = 0.3          # NanoDet's scores are IoU-aware (quality focal loss), so they run low
    nms_iou: float = 0.5
    max_people: int = 20
    min_size: float = 8.0                 # px: smaller boxes are not people a 1:4 heatmap can pose
    model_path: str = ""                  # "" = assets/nanodet_coco_416.tflite
    num_threads: int = 2


@dataclass(frozen=True)
class MultiDetectConfig:
    """MoveNet MultiPose as a person detector (livepose.detect.multipose; the .tflite ships in assets/)."""

    score_threshold: float = 0.1          # its person scores run low: at 0.1 it found 0.90 of images_gt's people with
                                          # 0.43 false boxes an image, at 0.2 0.85 and 0.19 (the tracker drops phantoms)
    nms_iou: float = 0.5                  # between the views of one call (the network suppresses within a view)
    max_people: int = 20
    min_size: float = 8.0                 # px: smaller boxes are not people a 1:4 heatmap can pose
    split_overlap: float = 0.2            # a full view (6 people, the network's cap) is searched again in two halves,
                                          # each this share of the frame wider than half, so nobody is cut in two
    cut_margin: float = 0.02              # a half's box reaching this close (share of the half) to the line it was cut
                                          # along is a person cut in two: the other view sees them whole
    model_path: str = ""                  # "" = assets/movenet_multipose_320.tflite
    num_threads: int = 2


@dataclass(frozen=True)
class FusedDetectConfig:
    """NanoDet and tiled BlazePose together (livepose.detect.fused): the most people, at both detectors' cost."""

    blazepose_tiles: int = 2              # BlazePose on the whole frame and a 2x2 grid: small people too
    overlap_iou: float = 0.5              # a BlazePose box over a NanoDet box by more than this is the same person
    max_people: int = 20


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
    iou_weight: float = 0.5               # similarity = w * box IoU + (1 - w) * keypoint OKS (IoU alone without keypoints)
    min_hits: int = 2                     # a track is confirmed (shown) after this many matched frames; those born
                                          # on a stream's first frame (a still image) are shown at once
    max_misses: int = 30                  # a track is ended after this many frames without a match (1 s at 30 fps:
                                          # a person hidden behind a passer-by for longer than the ROIs coast keeps
                                          # the search going and takes her id back, shown at once, when it finds her;
                                          # at 10 the search slowed to every detect_every frames once her track ended)
    detect_every: int = 10                # run the detector at least every N frames to catch newcomers
    lost_detect_every: int = 1            # ... and this often while a track is lost or overlaps another: a person
                                          # may be hidden there, and the bottom-up search is what finds her when she
                                          # comes out (synthetic groups, detector on its frame: every 3rd frame left
                                          # 20 of 245 person-frames unseen that MultiPose found on the frames it
                                          # skipped; every frame: recall 0.81/0.74/0.84 -> 0.82/0.82/0.92). A
                                          # person alone, found, keeps detect_every (the one-person speed)
    overlap_iou: float = 0.2              # tracks whose boxes overlap this much: a crop there can show the wrong one
    background_detect: bool = True        # that periodic run on its own thread: its frames do not wait for it
    min_keypoint_score: float = 0.3       # keypoints above this define the next frame's ROI
    min_track_score: float = 0.25         # mean keypoint score under which a pose is not a person (a phantom)
    min_person_joints: int = 6            # ... as is one with fewer keypoints above min_keypoint_score
    min_shared_joints: int = 4            # two poses are compared over at least this many joints confident in both
    same_person_oks: float = 0.5          # a detector's own pose this close (OKS) to a track's, their boxes
                                          # overlapping (min_iou), is that track's person: it replaces the ROI
    detector_pose_oks: float = 0.8        # a detection's crop whose pose agrees less with the detector's own keeps
                                          # the detector's (images_gt: MultiPose's pose against the network's on the
                                          # same person 0.66-0.99, median 0.94; MultiPose's PCK@0.2 0.82, the
                                          # network's on the same boxes 0.74)
    same_box_coverage: float = 0.9        # box-only detectors: a detection holding this share of a track's keypoint
    same_centre_offset: float = 0.15      # box, centred within this share of its own size, replaces its ROI
    duplicate_oks: float = 0.8            # two crops whose poses agree this well (OKS) show one person: one is kept
                                          # (images_gt: two crops of one person >= 0.92 but for 2 of 37; two people
                                          # side by side <= 0.55; two standing overlapped on a synthetic clip 0.6-0.7)
    roi_max_shrink: float = 0.05          # an ROI's sides shrink by at most this share a frame: a network that pulls
                                          # edge joints inwards cannot spiral the crop down onto the torso
    taken_oks: float = 0.5                # a track's crop whose pose agrees this well with another track's predicted
                                          # pose, and better than with its own, shows that person: its track coasts,
                                          # and the pose goes to that track unless its own crop shows it better
                                          # (synthetic group video: a hidden person's crop showing the walker agreed
                                          # 0.56-0.68 with his pose; at 0.8 the walkers' tracks took others' ids)
    velocity_smoothing: float = 0.5       # weight of the newest step in a track's velocity (1: the last step alone)
    roi_coast_frames: int = 5             # a track that missed (hidden behind a passer-by) keeps an ROI on its
                                          # motion-predicted box this many frames, so she is found when she comes out


@dataclass(frozen=True)
class SmoothConfig:
    """Per-joint temporal filtering of keypoints."""

    method: str = "kalman"                # "kalman", "oneeuro" or "none"
    motion_model: str = "cv"              # Kalman: "cv" constant velocity, "ca" constant acceleration
    process_noise: float = 1e6            # Kalman: variance of the white acceleration, (px/s^2)^2 ("ca": of its
                                          # rate of change); higher follows faster. Tuned on PennAction + 3 px noise
    measurement_noise: float = 3.0        # Kalman: keypoint noise std in px at confidence 1; higher smooths more
    min_score: float = 0.1                # below this a keypoint is treated as missing (predict only). On
                                          # images_gt + held-out LSPet, keypoints at 0.1-0.2 are right half as
                                          # often as at 0.2-0.3 or more (PCK@0.2 0.24 vs 0.44, m4; 0.24 vs 0.28,
                                          # v10), under 0.1 rarely (0.12, 0.07); R already down-weights the low
                                          # ones, so coasting over them threw information away
    max_predict_s: float = 0.3            # a joint unseen for longer is dropped
    initial_velocity_std: float = 300.0   # Kalman: px/s, uncertainty of a new joint's velocity (starts at 0)
    initial_acceleration_std: float = 3000.0  # Kalman "ca": px/s^2, same for the acceleration
    oneeuro_min_cutoff: float = 1.0       # One Euro: Hz at rest; lower smooths more
    oneeuro_beta: float = 0.1             # One Euro: speed coefficient; higher follows faster. Re-tuned (was 0.05)
                                          # for the reference speed term: PennAction + 3 px, RMSE 4.24 -> 3.69 px
    oneeuro_d_cutoff: float = 1.0


@dataclass(frozen=True)
class PipelineConfig:
    """How the stages are put together."""

    model: ModelConfig = field(default_factory=ModelConfig)
    detector: str = "multipose"           # "multipose" (MoveNet MultiPose: everyone, up to 6 a view), "blazepose"
                                          # (fast, one prominent person), "nanodet" (COCO, groups) or "fused"
                                          # (NanoDet + tiled BlazePose); README "Person detectors" has the figures
    detect: DetectConfig = field(default_factory=DetectConfig)
    multi_detect: MultiDetectConfig = field(default_factory=MultiDetectConfig)
    coco_detect: CocoDetectConfig = field(default_factory=CocoDetectConfig)
    fused_detect: FusedDetectConfig = field(default_factory=FusedDetectConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8)  # fixed batch shapes the network is compiled for


@dataclass(frozen=True)
class LiteConfig:
    """LiteRT export and runtime (livepose.nets.export, livepose.nets.lite_cache, livepose.nets.load)."""

    precisions: tuple[str, ...] = ("fp32", "fp16", "dynamic", "int8", "int8_hires_float")
    runtime: str = "auto"                 # CLI/app default: LiteRT where an export of the weights is cached, else Keras
    precision: str = "auto"               # CLI/app default: the fastest exported variant within max_pck_loss
    auto_precisions: tuple[str, ...] = ("fp32", "dynamic", "int8")  # what "auto" exports when no variant is yet
                                          # (int8_hires_float only on request: on the shipped networks it was
                                          # neither faster nor within budget where int8 was not, 2026-12-08)
    batch_sizes: tuple[int, ...] = (1, 2, 4)  # one .tflite per fixed batch size (a dynamic batch ran 2x slower)
    phase_deconv: bool = True             # deconvs as four 2x2 phase convolutions + depth_to_space (LiteRT runs it faster)
    calibration_crops: int = 64           # int8: real LSPet person crops for post-training quantisation
    float_height_share: float = 0.25      # int8_hires_float: ops whose output is at least this share of the input's
                                          # height stay float32 (normalisation, stem, first stage; the heatmaps' last
                                          # layer, at a quarter of the input's height)
    max_pck_loss: float = 0.01            # automatic choice: a variant may lose at most this PCK@0.2 against Keras
    num_threads: int = 2                  # XNNPACK threads
    bench_runs: int = 20                  # timed invocations per batch size when a variant is exported


@dataclass(frozen=True)
class SourceConfig:
    """Frame sources: cameras, streams, video files, image folders (livepose.sources)."""

    mode: str = "realtime"                # files: "realtime" (native fps, drop what the consumer misses) or "every"
    loop: bool = False                    # files: start again at the end
    folder_fps: float = 30.0              # image folders: the frame rate that source_time and realtime mode assume
    resolution: tuple[int, int] | None = None  # cameras: requested (width, height); None keeps the driver's
    fps: float | None = None              # cameras: requested frame rate; None keeps the driver's
    backend: str = "any"                  # cameras: "any", "v4l2", "dshow", "msmf", "avfoundation", "gstreamer"
    camera_fourcc: str | None = None      # cameras: e.g. "MJPG", which many USB webcams need for 720p at 30 fps
    read_timeout_s: float = 1.0           # live: read() raises SourceStalled after this long without a frame
    stall_timeout_s: float = 2.0          # live: no frame for this long marks the source STALLED
    max_read_failures: int = 3            # live: consecutive failed reads before the capture is reopened
    reconnect_initial_s: float = 0.5      # live: first delay before reopening; doubles up to reconnect_max_s
    reconnect_max_s: float = 8.0
    reconnect_attempts: int | None = None  # live: give up (status FAILED) after this many; None retries forever
    stream_open_timeout_s: float = 5.0    # streams: FFmpeg open/read timeout, so a dead URL fails instead of hanging
    fps_window: int = 30                  # frames over which the delivered fps is measured
    time_jump_s: float = 1.0              # files: a source_time step larger than this is flagged as a jump
    close_timeout_s: float = 1.0          # close() waits this long for the capture thread

    def __post_init__(self) -> None:
        if self.mode not in ("realtime", "every"):
            raise ValueError(f"unknown file read mode {self.mode!r}: choose 'realtime' or 'every'")


@dataclass(frozen=True)
class WriterConfig:
    """Crash-safe outputs (livepose.writers)."""

    fsync_interval_s: float = 1.0         # JSONL/CSV: os.fsync at most this often (0: every frame; flush is always per frame)


@dataclass(frozen=True)
class WeightsConfig:
    """Checkpoint download and cache (livepose.nets.checkpoints)."""

    timeout_s: float = 30.0               # per network read; a stalled server fails instead of hanging
    chunk_bytes: int = 1 << 20            # download read size, also the progress-bar step
    max_attempts: int = 3                 # tries per download; an interrupted one resumes from its .part file
    retry_backoff_s: float = 1.0          # wait before the 2nd try, doubled before each next one: a server that
                                          # just dropped us is not hammered


@dataclass(frozen=True)
class RenderConfig:
    """How skeletons are drawn (QPainter), in the app and in annotated videos alike."""

    line_width: float = 3.0
    joint_radius: float = 4.0             # at confidence 1; scaled down with the keypoint's score
    min_score: float = 0.3                # keypoints below this are not drawn
    raw_ghost_opacity: float = 0.35       # the faint raw skeleton drawn beside the smoothed one
    show_ids: bool = True
    show_raw: bool = False
    label_font_pt: int = 12               # track id labels
    hud_font_share: float = 0.022         # HUD text height as a share of the frame's (720 p: 16 px, 3 lines ~10 %)
    hud_min_font_px: int = 8              # smaller frames or windows shrink the HUD to this, then elide its lines
    hud_in_outputs: bool = False          # burn the HUD into saved videos and pictures (run --hud; the app's View menu)


@dataclass(frozen=True)
class RivalConfig:
    """MediaPipe Pose, the reference `livepose bench` and `livepose eval` compare against (livepose.commands.rivals)."""

    model_complexity: int = 1             # 0 lite, 1 full, 2 heavy; 1 is the default MediaPipe ships live
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    crop_size: tuple[int, int] = (512, 384)  # eval: (h, w) a person's region is warped to before MediaPipe sees it
    movenet_min_score: float = 0.3        # MoveNet Thunder: joints under this do not define its next crop


@dataclass(frozen=True)
class BenchConfig:
    """`livepose bench` defaults."""

    people: tuple[int, ...] = (1, 2, 4, 8)  # batch sizes timed for the cost per extra person
    repeats: int = 3                      # timed passes over the frames (warm-up excluded)
    warmup: int = 5                       # frames run before timing (graph tracing, caches)
    person_repeats: int = 10              # timed estimator calls per batch size and repeat
    threads: int = 2                      # TF intra-op, LiteRT, OpenCV and CPU affinity, the same for both systems


@dataclass(frozen=True)
class BatchConfig:
    """`livepose batch` defaults (livepose.commands.batch)."""

    workers: int | None = None            # Ray actors, each loading the model once; None: one per CPU core
    object_store_mb: int = 200            # local Ray only: clips travel as paths and results as small dicts
    video_suffix: str = ".mp4"            # --video: annotated clips as mp4v (shareable; .avi would survive a crash)
    bench_workers: tuple[int, ...] = (1, 2)  # --bench: the worker counts timed, in one run
    poll_s: float = 0.2                   # the driver waits on Ray in slices this long, checking for Ctrl-C between
    connect_timeout_s: float = 5.0        # --address HOST:PORT must answer this soon (Ray itself retries for minutes)


@dataclass(frozen=True)
class EvalConfig:
    """`livepose eval` defaults."""

    pck_alphas: tuple[float, ...] = (0.2, 0.5)  # PCK x torso size (the LSP convention; images and sequences)
    pck_box_alphas: tuple[float, ...] = (0.2,)  # sequences also: PCK x GT box size (the JHMDB / Penn Action one)
    bootstrap_block: int = 5              # frames per block when bootstrapping a smoother's accel-error change
    bootstrap_draws: int = 5000
    match_min_oks: float = 0.1            # detector boxes: a prediction matches a GT person (Hungarian on OKS) above this
    duplicate_min_oks: float = 0.5        # groups: an unmatched shown person this close to a GT person is a duplicate
    kalman_measurement_noise: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 35.0)
    kalman_process_noise: tuple[float, ...] = (1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7)
    oneeuro_min_cutoff: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
    oneeuro_beta: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.3, 1.0)


@dataclass(frozen=True)
class SynthConfig:
    """`livepose synth`: a multi-person test video with exact GT, made from an annotated still (livepose.synthetic)."""

    frames: int = 40
    fps: float = 30.0
    size: tuple[int, int] = (480, 640)    # (height, width) of the video
    zoom: tuple[float, float] = (1.1, 1.35)  # camera zoom at the first and the last frame (1: the still just fits)
    pan: float = 0.15                     # camera pan over the clip, share of the still's width (clamped to the still)
    shake_px: float = 2.0                 # std of the camera's frame-to-frame jitter, output pixels
    walkers: int = 2                      # people pasted into the scene, walking past each other
    walker_height: float = 0.8            # the front walker's height, share of the still's height
    back_scale: float = 0.85              # each further walker is this much smaller and stands higher (farther)
    walk: float = 0.5                     # how far the walkers go over the clip, share of the still's width
    feather_px: float = 5.0               # soft edge of a pasted person's matte
    limb_width: float = 0.12              # matte: limb thickness, share of the person's height
    min_visible: float = 0.5              # GT: a person counts as visible when this share of their labelled joints
                                          # is in view and not behind a walker pasted in front
    seed: int = 0


@dataclass(frozen=True)
class AppConfig:
    """The desktop app (livepose.app): meters, plots and stream housekeeping."""

    history_s: float = 5.0                # the jitter plot and the lag estimate look this far back
    jitter_window_s: float = 2.0          # the live jitter meter averages over this long
    max_lag_frames: int = 10              # smoothing lag is searched within +- this many frames
    panel_refresh_s: float = 0.1          # meters and plot redraw at most this often (the video: every result)
    fps_window: int = 30                  # results over which display and pipeline fps are measured
    camera_probe: int = 10                # camera indices tried by the camera list
    record_fps: float = 30.0              # recordings of sources that report no frame rate (some cameras)
    stop_timeout_s: float = 1.0           # closing waits this long for the pipeline thread
    hud_in_outputs: bool = True           # recordings and screenshots show the HUD as the window does (View menu)
