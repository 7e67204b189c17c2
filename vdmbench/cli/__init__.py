"""The `vdmbench` command: argument parsing, Hydra composition and terminal output."""

from vdmbench.cli.commands import main

__all__ = ["main"]
