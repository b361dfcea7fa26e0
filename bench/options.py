"""Command-line options every benchmark of bench/ shares (imported from next to them)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


class BrokenError(RuntimeError):
    """Something that must work did not: the benchmark cannot give a figure."""


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


def run_in_workdir(script: str, keep: bool, run: Callable[[Path], None]) -> int:
    """Run a benchmark in a fresh folder (kept with --keep); its exit status: 1 when broken."""
    workdir = Path(tempfile.mkdtemp(prefix=f"overseer-bench-{script}-"))
    try:
        run(workdir)
    except (BrokenError, AssertionError) as error:
        print(f"bench/{script}.py: broken: {error}", file=sys.stderr)
        return 1
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0
