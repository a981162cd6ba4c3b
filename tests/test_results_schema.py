"""docs/results-schema.md describes results.csv: every column of the committed real-data results, and every
metric of every built-in evaluation and of training, with the unit the code writes into the `unit` column.
(The metrics the evaluations actually emit on a tiny run are checked in test_eval_engine.py, which runs them.)"""

from __future__ import annotations

import pandas as pd

from cutmix_bench.evaluations import EVALUATIONS
from cutmix_bench.training.fit import TRAIN_UNITS

from helpers import REPO, documented_units

PUBLISHED = REPO / "results" / "cifar100-cpu" / "results.csv"


def built_in() -> list[str]:
    """The registered evaluations of this package (other tests may register plug-ins)."""
    return [name for name in EVALUATIONS.names() if EVALUATIONS.get(name).__module__.startswith("cutmix_bench.")]


def declared_units() -> dict[tuple[str, str], str]:
    declared = {("train", metric): unit for metric, unit in TRAIN_UNITS.items()}
    for name in built_in():
        declared.update({(name, metric): unit for metric, unit in EVALUATIONS.get(name).units.items()})
    return declared


def test_every_declared_metric_has_its_unit_in_the_doc_and_the_doc_no_other() -> None:
    declared = declared_units()
    assert all(declared.values())
    assert documented_units() == declared
    assert {name for name, _ in declared} == {"train", *built_in()}  # every evaluation states units


def test_committed_results_have_a_documented_unit_per_row_and_every_column_documented() -> None:
    results = pd.read_csv(PUBLISHED, keep_default_na=False)
    columns = (REPO / "docs" / "results-schema.md").read_text().split("## Columns", 1)[1].split("## Metrics")[0]
    for column in results.columns:
        assert f"`{column}`" in columns, column
    documented = documented_units()
    units = results.apply(lambda row: documented[row["evaluation"], row["metric"]], axis=1)
    assert (results["unit"] == units).all()
    assert (results.columns.get_loc("unit") == results.columns.get_loc("value") + 1)
