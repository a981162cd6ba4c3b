"""The corruption registry: one decorated function per corruption carries everything the rest of the project
needs to know about it, so adding one (built in or in a user's plug-in file) touches nothing else:

    @register_corruption("gaussian_noise", category="noise", short="Gauss",
                         cifar=[0.04, 0.06, 0.08, 0.09, 0.10], imagenet=[0.08, 0.12, 0.18, 0.26, 0.38])
    def gaussian_noise(x, c, rng, variant): ...

`family` is the set a corruption belongs to: "c" (CIFAR-10-C / CIFAR-100-C, the default) or "c-bar"
(CIFAR-10-C-bar, Mintun et al., NeurIPS 2021: `cbar.py`); `category` is the ImageNet-C category of a "c"
corruption (noise, blur, weather, digital; a "c-bar" one has none), `extra=True` marks the 4 held-out
corruptions reported apart from the mCE, `cifar` / `imagenet` are the per-severity parameters (one entry per
severity 1..5) of the CIFAR-10-C script and of ImageNet-C, `short` the report's column name. The function maps
uint8 [N, H, W, 3] with one severity's parameters, a NumPy generator and the variant ("cifar" or "imagenet") to
values in [0, 255].

Order: the "c" family in the release order of CIFAR-C / ImageNet-C (`RELEASE`, =
`imagecorruptions.get_corruption_names("all")`), corruptions outside the release following in registration
order, then the "c-bar" family in registration order; this fixes the order of files, report columns and results
rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

CATEGORIES = ("noise", "blur", "weather", "digital")
FAMILIES = ("c", "c-bar")
SEVERITIES = (1, 2, 3, 4, 5)
RELEASE = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
           "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
           "speckle_noise", "gaussian_blur", "spatter", "saturate")

Fn = Callable[..., Any]


@dataclass(frozen=True)
class Corruption:
    """One registered corruption; `tables` maps a parameter table ("cifar", "imagenet") to 5 severities;
    `category` is the family name for a "c-bar" corruption."""

    name: str
    fn: Fn
    category: str
    extra: bool
    short: str
    tables: dict[str, tuple]
    family: str = "c"


class CorruptionRegistry:
    """Name -> `Corruption`, iterated in the release order (see the module docstring)."""

    kind = "corruption"

    def __init__(self) -> None:
        self._entries: dict[str, Corruption] = {}

    def register(self, name: str, *, category: str | None = None, cifar: Sequence, imagenet: Sequence | None = None,
                 extra: bool = False, short: str | None = None, family: str = "c") -> Callable[[Fn], Fn]:
        if name in self._entries:
            raise ValueError(f"corruption {name!r} is registered twice")
        if family not in FAMILIES:
            raise ValueError(f"corruption {name!r}: family {family!r}; expected one of {', '.join(FAMILIES)}")
        if family == "c-bar":
            if category is not None or extra or imagenet is not None:
                raise ValueError(f"corruption {name!r}: a c-bar corruption has no category, extra flag or imagenet "
                                 "table (C-bar is its own set with CIFAR parameters)")
            category = family
        elif category not in CATEGORIES:
            raise ValueError(f"corruption {name!r}: category {category!r}; expected one of {', '.join(CATEGORIES)}")
        tables = {"cifar": tuple(cifar), **({} if imagenet is None else {"imagenet": tuple(imagenet)})}
        for table, values in tables.items():
            if len(values) != len(SEVERITIES):
                raise ValueError(f"corruption {name!r}: {table} has {len(values)} severities; expected "
                                 f"{len(SEVERITIES)}")

        def decorator(fn: Fn) -> Fn:
            self._entries[name] = Corruption(name, fn, category, bool(extra), short or name, tables, family)
            return fn

        return decorator

    def names(self, family: str | None = None) -> list[str]:
        """Every corruption of `family` (None: all): the "c" benchmark ones, then its extras, each in the release
        order, then the "c-bar" ones."""
        rank = {name: i for i, name in enumerate(RELEASE)}
        ordered = sorted(self._entries, key=lambda n: rank.get(n, len(RELEASE) + list(self._entries).index(n)))
        c = [n for n in ordered if self._entries[n].family == "c"]
        by_family = {"c": [n for n in c if not self._entries[n].extra] + [n for n in c if self._entries[n].extra],
                     "c-bar": [n for n in ordered if self._entries[n].family == "c-bar"]}
        return by_family[family] if family is not None else by_family["c"] + by_family["c-bar"]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> Corruption:
        return self._entries[name]


CORRUPTIONS = CorruptionRegistry()
register_corruption = CORRUPTIONS.register
