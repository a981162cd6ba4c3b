"""Checks of user input at the boundary, shared by the modules that take it.

Files the user names as input (a suite, a plug-in's `.py` file) are checked to be what they should be before
they are read, so that a folder, a device, an empty file or a huge file each get their own one-line message
instead of "not found", a hang, or a parser's confusion. Component parameters (a method's or an evaluation's
numbers and switches) are checked for their type and full range when the component is built, so that a value
YAML parsed as something else (`yes` is True, `.nan` a float) never reaches training."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

from .errors import BenchError

MAX_TEXT_BYTES = 1 << 20  # 1 MiB: the largest suite in suites/ is about 4 KiB; a bigger file is a wrong path


def check_input_file(path: Path, what: str, max_bytes: int = MAX_TEXT_BYTES) -> None:
    """`path` is an existing, regular, non-empty file of at most `max_bytes`, checked by its metadata alone
    (stat), before anything reads it: reading /dev/zero or a named pipe would never return."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise BenchError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise BenchError(f"{path}: is a directory; expected a {what}")
    if not stat.S_ISREG(info.st_mode):
        kind = ("a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                else "a named pipe" if stat.S_ISFIFO(info.st_mode) else "a socket")
        raise BenchError(f"{path}: is {kind}, not a regular file; expected a {what}")
    if info.st_size == 0:
        raise BenchError(f"{path}: the {what} is empty")
    if info.st_size > max_bytes:
        raise BenchError(f"{path}: the {what} is {info.st_size:,} bytes, more than the limit of {max_bytes:,} "
                         f"bytes; is this the right file?")



def check_number(name: str, value: Any) -> float:
    """A finite int or float (not a bool: YAML reads `yes` as True); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_integer(name: str, value: Any, low: int, high: int | None = None) -> int:
    """An int (not a bool) in [low, high]; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        span = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {span}, got {value!r}")
    return value


def check_flag(name: str, value: Any) -> bool:
    """true or false; ValueError for anything else (a string "false" would otherwise count as true)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


MAX_SEED = 2**32 - 1  # numpy's seed range


def check_seed(name: str, value: Any) -> int:
    return check_integer(name, value, 0, MAX_SEED)
