"""Do two results directories hold the same numbers, timing aside? For showing that a change of structure moved
no number: run the same suite with the old and the new code into two output_dirs, then

    python benchmarks/same_results.py /tmp/before /tmp/after

compares results.csv and every run's eval/*.csv (less the timing rows), report.md (timing, command, commit and
start lines masked), every CSV under tables/, every run's log.csv (less its seconds column) and saved OOD scores,
and the figures byte for byte. Prints one line per file that differs and exits 1 if any does.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

TIMING_METRICS = {"train_minutes", "images_per_second", "wall_seconds_this_session"}
MASKED_ROWS = ("**Command**", "**Started**", "**Wall time**", "**cutmix-bench**")  # report header rows


def results(path: Path) -> str:
    frame = pd.read_csv(path)
    return frame[~frame["metric"].isin(TIMING_METRICS)].to_csv(index=False)


def report(path: Path) -> str:
    """Table cells stripped (a timing cell changes the padding of its whole table), the masked header rows and
    every column whose heading names a time reduced to their names."""
    lines, timed = [], set()
    for line in path.read_text().splitlines():
        if not line.startswith("|"):
            lines.append(line)
            timed = set()
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] in MASKED_ROWS:
            cells = cells[:1]
        elif all(re.fullmatch(r":?-+:?", cell) for cell in cells):  # the rule under a heading: its width varies
            cells = ["---"] * len(cells)
        elif not timed and any(re.search(r"\btime\b", cell, re.IGNORECASE) for cell in cells):
            timed = {i for i, cell in enumerate(cells) if re.search(r"\btime\b", cell, re.IGNORECASE)}
        else:
            cells = ["" if i in timed else cell for i, cell in enumerate(cells)]
        lines.append("|".join(cells))
    return "\n".join(lines)


def epoch_log(path: Path) -> str:
    return pd.read_csv(path).drop(columns=["seconds"], errors="ignore").to_csv(index=False)


def scores(path: Path) -> str:
    with np.load(path) as saved:
        return repr({name: saved[name].tobytes() for name in sorted(saved.files)})


def compare(a: Path, b: Path) -> list[str]:
    pairs = [("results.csv", results), ("report.md", report)]
    for pattern, reader in (("tables/*.csv", Path.read_text), ("runs/*/eval/*.csv", results),
                            ("runs/*/log.csv", epoch_log), ("runs/*/ood_scores.npz", scores),
                            ("figures/*.png", Path.read_bytes)):
        names = {str(p.relative_to(a)) for p in a.glob(pattern)} | {str(p.relative_to(b)) for p in b.glob(pattern)}
        pairs += [(name, reader) for name in sorted(names)]
    differing = []
    for name, reader in pairs:
        if not (a / name).is_file() or not (b / name).is_file():
            differing.append(f"{name}: only in {a if (a / name).is_file() else b}")
        elif reader(a / name) != reader(b / name):
            differing.append(f"{name}: differs")
    print(f"{len(pairs) - len(differing)} of {len(pairs)} files the same")
    return differing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args()
    differing = compare(args.a, args.b)
    for line in differing:
        print(line)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
