"""The suite's own guard rails: in CI a missing ../shared/data fails instead of skipping half the suite."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

TEST = "tests/test_sources.py::test_to_rgb8_converts_bgra_and_float"


@pytest.mark.parametrize("ci, outcome", [("true", "1 error"), ("", "1 skipped")])
def test_missing_shared_data_fails_only_in_ci(tmp_path, ci, outcome):
    env = dict(os.environ, LIVEPOSE_SHARED_DATA=str(tmp_path / "absent"), CI=ci)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert outcome in proc.stdout, proc.stdout[-2000:]
    assert "real test data not found" in proc.stdout
