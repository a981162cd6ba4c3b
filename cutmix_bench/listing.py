"""`cutmix-bench list`: every registered component with a one-line description and its reference.

Building it imports every registry, and so torch (~4 s of CPU). The package's own listing only changes when its
source does, so it is kept in the user's cache folder under a key of the package's files (path, size, mtime)
and its version: a later `list` reads it in well under a second. With plug-ins (`--plugin`, or installed entry
points) the listing is built every time: their code is not in the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
from collections import Counter
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from . import __version__
from .io import write_text
from .plugins import ENTRY_POINT_GROUP

PACKAGE = Path(__file__).resolve().parent


def listing(plugins: list[str]) -> str:
    """The text of `list`: from the cache when nothing but the package is listed, else built."""
    if plugins or tuple(entry_points(group=ENTRY_POINT_GROUP)):
        return build_listing(plugins)
    cached = cache_file()
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return cached.read_text(encoding="utf-8")
    text = build_listing([])
    with contextlib.suppress(OSError):  # a read-only or missing home only costs the next call its 4 s
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_text(cached, text)
    return text


def cache_file() -> Path:
    """<XDG cache>/cutmix-bench/list-<version>-<digest of the package's .py files: path, size, mtime>.txt"""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(PACKAGE)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cutmix-bench"
    return root / f"list-{__version__}-{digest.hexdigest()[:16]}.txt"


def build_listing(plugins: list[str]) -> str:
    from . import corruptions
    from .data import DATASETS
    from .evaluations import EVALUATIONS
    from .methods import METHODS
    from .models import MODELS
    from .ood.scores import SCORES
    from .plugins import load_plugins

    load_plugins(plugins)
    lines = []
    for registry in (METHODS, MODELS, DATASETS, EVALUATIONS, SCORES):
        lines.append(f"{registry.kind}s:")
        factories = {name: registry.get(name) for name in registry.names()}
        shared = Counter(f.__module__ for f in factories.values())
        for name, factory in factories.items():
            about = registry.about(name)
            own = shared[factory.__module__] > 1 or not factory.__module__.startswith(f"{__package__}.")
            text = about.description or describe(factory, own)
            lines.append(f"  {name:<16} {text if about.display == name else f'{about.display}: {text}'}")
            reference = about.reference or getattr(factory, "reference", "")
            if reference:  # a method's paper and official code, on its own line
                lines.append(f"  {'':<16}   {reference}")
    lines.append("corruptions, family c (CIFAR-10-C / CIFAR-100-C, Hendrycks & Dietterich, ICLR 2019):")
    for name, category in corruptions.CATEGORY.items():
        lines.append(f"  {name:<18} {category}{' (reported apart, never in the mCE)' if category == 'extra' else ''}")
    lines.append("corruptions, family c-bar (CIFAR-10-C-bar, Mintun et al., NeurIPS 2021; reported apart as the C-bar "
                 "error):")
    for name in corruptions.CBAR:
        lines.append(f"  {name:<31} {describe(corruptions.CORRUPTIONS[name].fn, True)}")
    return "\n".join(lines) + "\n"


def describe(factory: Any, own_first: bool) -> str:
    """First sentence of the component's module docstring (one built-in component per module, citing its
    paper), or of the factory's own (class) docstring, when it has one, for a component that shares its module
    or comes from a plug-in."""
    own = factory.__doc__ if own_first and factory.__doc__ else None
    doc = " ".join((own or sys.modules[factory.__module__].__doc__ or "").split("\n\n")[0].split())
    first = re.split(r"\.\s+(?=[A-Z`])", doc)[0].removesuffix(".")  # not at "et al. (2016)" or "Fig. 5a"
    return (first if len(first) <= 110 else first[:109] + "…") or "(no description)"
