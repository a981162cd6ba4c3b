"""No mixing: the reference every method is compared against."""

from . import METHODS
from .base import Method


@METHODS.register("baseline")
class Baseline(Method):
    """Returns the batch unchanged."""
