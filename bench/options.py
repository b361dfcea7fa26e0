"""Command-line options every benchmark of bench/ shares (imported from next to them)."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written, and each option's default."""


def new_parser(prog: str, description: str | None, epilog: str) -> argparse.ArgumentParser:
    """A benchmark's parser: its module docstring as the description, defaults shown."""
    return argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=HelpFormatter, epilog=epilog
    )


def add_run_options(parser: argparse.ArgumentParser, *, timeout: float, unit: str) -> None:
    """--timeout (seconds one UNIT may take), --progress, --keep and --verbose-operator."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help=f"seconds a {unit} may take before it is broken",
    )
    parser.add_argument(
        "--progress", type=float, default=5.0, help="seconds between progress lines"
    )
    parser.add_argument("--keep", action="store_true", help="keep the namespace and files")
    parser.add_argument(
        "--verbose-operator", action="store_true", help="run the operator with --verbose"
    )
