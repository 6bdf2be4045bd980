#!/usr/bin/env python3
"""Open the livepose desktop app (the same as `livepose app`); `run_live.py --help` lists the options."""

import sys

from livepose.app.main import cli

if __name__ == "__main__":
    sys.exit(cli())
