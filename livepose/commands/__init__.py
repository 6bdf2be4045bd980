"""The `livepose` subcommands, one module each; :mod:`livepose.cli` dispatches to them.

Each module exposes ``add_arguments(parser)`` and ``main(args) -> int``. Commands sit on top: they may import any
stage, and no stage imports them.
"""
