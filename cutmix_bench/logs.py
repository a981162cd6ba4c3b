"""Logging of a command and of its worker processes (a spawned worker is a fresh interpreter): our own lines
at INFO, Lightning's info lines and deprecation chatter off. Called by the command line and by worker entry
points only: importing the package configures nothing."""

from __future__ import annotations

import logging
import warnings

NOISY = ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric")


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in NOISY:  # accelerator summaries, tips
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
