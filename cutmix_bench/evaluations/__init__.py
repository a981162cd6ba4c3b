"""Evaluations: registry. A new evaluation is one file (an `Evaluation` subclass) + one import line."""

from __future__ import annotations

from ..registry import Registry
from .base import EvalContext, Evaluation, Plan, ReportContext, Row

EVALUATIONS: Registry[Evaluation] = Registry("evaluation")

from . import adversarial, clean, corruptions, inbetween, occlusion, ood  # noqa: E402,F401  (registration)

__all__ = ["EVALUATIONS", "EvalContext", "Evaluation", "Plan", "ReportContext", "Row"]
