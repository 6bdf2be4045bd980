"""livepose: real-time top-down human pose tracking (detector -> SimpleBaseline -> Kalman)."""

__version__ = "0.1.0"
