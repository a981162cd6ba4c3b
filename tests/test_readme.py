"""The README renders: every markdown table is one block of rows with the same number of cells as its header
(a blank line inside a table turns the rest into loose text, as the Methods table once did)."""

from __future__ import annotations

import re

from helpers import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def cells(line: str) -> int:
    return len(re.split(r"(?<!\\)\|", line.strip().strip("|")))


def tables(text: str) -> list[list[str]]:
    """Runs of consecutive lines starting with '|', outside code fences."""
    found, current, fenced = [], [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("|"):
            current.append(line)
            continue
        if current:
            found.append(current)
            current = []
    return found + ([current] if current else [])


def test_every_table_has_a_header_a_rule_and_rows_of_its_width() -> None:
    for doc in DOCS:
        for table in tables(doc.read_text()):
            where = f"{doc.name}: table starting {table[0][:60]!r}"
            assert len(table) >= 2 and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", table[1].strip()), where
            widths = {cells(line) for line in table}
            assert widths == {cells(table[0])}, f"{where}: rows with {sorted(widths)} cells"


def test_the_methods_table_lists_every_builtin_method() -> None:
    from cutmix_bench.methods import METHODS

    table = next(t for t in tables((REPO / "README.md").read_text()) if t[0].startswith("| name | parameters"))
    listed = {re.match(r"\| `([a-z_]+)`", row).group(1) for row in table[2:]}
    assert listed == set(METHODS.names())
