"""What the app remembers between runs: last source, model, detector, filter and knobs, as JSON under XDG config.

JSON rather than QSettings so the file is readable and the tests can point it anywhere ($XDG_CONFIG_HOME).
An unreadable or malformed file never stops the app: it logs a warning and starts from the defaults.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from livepose.atomic import write_atomic
from livepose.config import AppConfig, PipelineConfig, SmoothConfig, SourceConfig

log = logging.getLogger(__name__)

FILE_NAME = "app.json"


@dataclass
class AppSettings:
    last_source: str = ""              # file, folder or camera index ("0"); "" = none yet
    model: str = "default"
    detector: str = PipelineConfig.detector
    filter: str = SmoothConfig.method  # the last smoothing method that was on ("kalman" or "oneeuro")
    smoothing: bool = True
    process_noise: float = SmoothConfig.process_noise
    measurement_noise: float = SmoothConfig.measurement_noise
    oneeuro_min_cutoff: float = SmoothConfig.oneeuro_min_cutoff
    oneeuro_beta: float = SmoothConfig.oneeuro_beta
    show_raw: bool = False
    joint: int = 9                     # the joint the jitter plot follows (left wrist)
    loop: bool = False
    every_frame: bool = SourceConfig.mode == "every"   # files: process every frame rather than keep to their fps
    hud_in_outputs: bool = AppConfig.hud_in_outputs

    def smooth_config(self, base: SmoothConfig = SmoothConfig()) -> SmoothConfig:
        return dataclasses.replace(base, method=self.filter if self.smoothing else "none",
                                   process_noise=self.process_noise, measurement_noise=self.measurement_noise,
                                   oneeuro_min_cutoff=self.oneeuro_min_cutoff, oneeuro_beta=self.oneeuro_beta)

    def remember_smoothing(self, cfg: SmoothConfig) -> None:
        self.smoothing = cfg.method != "none"
        if self.smoothing:
            self.filter = cfg.method
        self.process_noise, self.measurement_noise = cfg.process_noise, cfg.measurement_noise
        self.oneeuro_min_cutoff, self.oneeuro_beta = cfg.oneeuro_min_cutoff, cfg.oneeuro_beta


def settings_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "livepose" / FILE_NAME


def load_settings(path: str | Path | None = None) -> AppSettings:
    """The saved settings; defaults (with a warning) when the file is unreadable, and for unknown or bad fields."""
    path = Path(path or settings_path())
    if not path.exists():
        return AppSettings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("top level is not an object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        log.warning("settings file %s is unreadable (%s); using defaults", path, exc)
        return AppSettings()
    defaults = AppSettings()
    kept = {}
    for f in dataclasses.fields(AppSettings):
        if f.name not in data:
            continue
        value, default = data[f.name], getattr(defaults, f.name)
        # bool is an int subclass: compare exact types, but accept an int where a float is expected
        if type(value) is type(default) or (type(default) is float and type(value) is int):
            kept[f.name] = type(default)(value)
        else:
            log.warning("settings file %s: %s=%r is not a %s; using the default %r", path, f.name, value,
                        type(default).__name__, default)
    return AppSettings(**kept)


def save_settings(settings: AppSettings, path: str | Path | None = None) -> None:
    """Write atomically; a failure is logged, never raised (losing preferences must not lose a recording)."""
    path = Path(path or settings_path())
    if path.exists() and not path.is_file():
        log.warning("not saving settings: %s is not a regular file", path)   # e.g. a device: never replace it
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(dataclasses.asdict(settings), indent=2))
    except OSError as exc:
        log.warning("could not save settings to %s: %s", path, exc)
