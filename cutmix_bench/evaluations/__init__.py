"""Evaluations: registry. A new evaluation is one file (an `Evaluation` subclass) + one import line."""

from __future__ import annotations

from ..config import Suite
from ..registry import Registry
from .base import EvalContext, Evaluation, Headline, Plan, ReportContext, Row

EVALUATIONS: Registry[Evaluation] = Registry("evaluation")

from . import adversarial, clean, corruptions, inbetween, occlusion, ood  # noqa: E402,F401  (registration)


def evaluation_types(suite: Suite) -> dict[str, type[Evaluation]]:
    """Evaluation label -> the class of the evaluation it runs: what the report asks about each label (title,
    headlines, main-table columns, section), never matching label strings."""
    return {label: EVALUATIONS.get(suite.evaluation_spec(label)[0], f"evaluations.{label}")
            for label in suite.evaluations}


__all__ = ["EVALUATIONS", "EvalContext", "Evaluation", "Headline", "Plan", "ReportContext", "Row", "evaluation_types"]
