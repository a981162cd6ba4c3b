"""Logging of a command and of its worker processes (a spawned worker is a fresh interpreter): our own lines
at INFO (WARNING with `run --quiet`, passed to workers through the environment), Lightning's info lines and
deprecation chatter off. Called by the command line and by worker entry points only: importing the package
configures nothing."""

from __future__ import annotations

import logging
import os
import warnings

NOISY = ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric")
LEVEL_ENV = "CUTMIX_BENCH_LOG_LEVEL"  # inherited by worker processes (spawned, or started by a cluster executor)


def quiet_library(record: logging.LogRecord) -> bool:
    """Lightning sets its loggers to INFO when it is imported (after we configured them): drop their info
    lines at the handler, where that import cannot undo it."""
    return record.levelno >= logging.WARNING or not record.name.startswith(NOISY)


def configure_logging(level: str | None = None) -> None:
    """`level` (also given to this process's future workers), else the inherited one, else INFO."""
    if level is not None:
        os.environ[LEVEL_ENV] = level
    logging.basicConfig(format="%(message)s")
    root = logging.getLogger()
    root.setLevel(os.environ.get(LEVEL_ENV, "INFO"))
    for handler in root.handlers:
        if quiet_library not in handler.filters:
            handler.addFilter(quiet_library)
    for name in NOISY:  # accelerator summaries, tips
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
