"""The corruption registry: one decorated function per corruption carries everything the rest of the project
needs to know about it, so adding one (built in or in a user's plug-in file) touches nothing else:

    @register_corruption("gaussian_noise", category="noise", short="Gauss",
                         cifar=[0.04, 0.06, 0.08, 0.09, 0.10], imagenet=[0.08, 0.12, 0.18, 0.26, 0.38])
    def gaussian_noise(x, c, rng, variant): ...

`category` is the ImageNet-C family (noise, blur, weather, digital), `extra=True` marks the 4 held-out
corruptions reported apart from the mCE, `cifar` / `imagenet` are the per-severity parameters (one entry per
severity 1..5) of the CIFAR-10-C script and of ImageNet-C, `short` the report's column name. The function maps
uint8 [N, H, W, 3] with one severity's parameters, a NumPy generator and the variant ("cifar" or "imagenet") to
values in [0, 255].

Order: the release order of CIFAR-C / ImageNet-C (`RELEASE`, = `imagecorruptions.get_corruption_names("all")`),
which fixes the order of files, report columns and results rows; corruptions outside the release follow in
registration order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

CATEGORIES = ("noise", "blur", "weather", "digital")
SEVERITIES = (1, 2, 3, 4, 5)
RELEASE = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
           "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
           "speckle_noise", "gaussian_blur", "spatter", "saturate")

Fn = Callable[..., Any]


@dataclass(frozen=True)
class Corruption:
    """One registered corruption; `tables` maps a parameter table ("cifar", "imagenet") to 5 severities."""

    name: str
    fn: Fn
    category: str
    extra: bool
    short: str
    tables: dict[str, tuple]


class CorruptionRegistry:
    """Name -> `Corruption`, iterated in the release order (see the module docstring)."""

    kind = "corruption"

    def __init__(self) -> None:
        self._entries: dict[str, Corruption] = {}

    def register(self, name: str, *, category: str, cifar: Sequence, imagenet: Sequence | None = None,
                 extra: bool = False, short: str | None = None) -> Callable[[Fn], Fn]:
        if name in self._entries:
            raise ValueError(f"corruption {name!r} is registered twice")
        if category not in CATEGORIES:
            raise ValueError(f"corruption {name!r}: category {category!r}; expected one of {', '.join(CATEGORIES)}")
        tables = {"cifar": tuple(cifar), **({} if imagenet is None else {"imagenet": tuple(imagenet)})}
        for table, values in tables.items():
            if len(values) != len(SEVERITIES):
                raise ValueError(f"corruption {name!r}: {table} has {len(values)} severities; expected "
                                 f"{len(SEVERITIES)}")

        def decorator(fn: Fn) -> Fn:
            self._entries[name] = Corruption(name, fn, category, bool(extra), short or name, tables)
            return fn

        return decorator

    def names(self) -> list[str]:
        """Every corruption: the benchmark ones, then the extras, each in the release order."""
        rank = {name: i for i, name in enumerate(RELEASE)}
        ordered = sorted(self._entries, key=lambda n: rank.get(n, len(RELEASE) + list(self._entries).index(n)))
        return [n for n in ordered if not self._entries[n].extra] + [n for n in ordered if self._entries[n].extra]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> Corruption:
        return self._entries[name]


CORRUPTIONS = CorruptionRegistry()
register_corruption = CORRUPTIONS.register
