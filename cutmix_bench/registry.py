"""A name -> factory registry, as in timm: adding a component is one decorated function or class."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import BenchError

T = TypeVar("T")


@dataclass(frozen=True)
class About:
    """What `list` and the report show of a component, declared at registration: `display` (default: the
    name), `description` and `reference` (default: None, then `list` reads the docstrings and the factory's
    `reference` attribute)."""

    display: str
    description: str | None = None
    reference: str | None = None


class Registry(Generic[T]):
    """Maps names to factories and builds them with checked keyword arguments."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._about: dict[str, About] = {}

    def register(self, name: str, *, display: str | None = None, description: str | None = None,
                 reference: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            self._about[name] = About(display or name, description, reference)
            return factory

        return decorator

    def about(self, name: str) -> About:
        """What registration declared about `name` (its display name, description, reference)."""
        self.get(name)
        return self._about[name]

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: str) -> bool:
        return name in self._factories

    def get(self, name: str, key: str | None = None) -> Callable[..., T]:
        """The factory for `name`; `key` is the config path reported when the name is unknown."""
        if name not in self._factories:
            where = f"{key}: " if key else ""
            raise BenchError(f"{where}unknown {self.kind} {name!r}; expected one of {', '.join(self.names())}")
        return self._factories[name]

    def create(self, name: str, key: str | None = None, /, **kwargs: Any) -> T:
        """Build `name` with `kwargs`; unknown or invalid parameters raise BenchError naming `key`."""
        factory = self.get(name, key)
        check_kwargs(factory, kwargs, key or f"{self.kind} {name}")
        try:
            return factory(**kwargs)
        except BenchError:
            raise
        except (ValueError, TypeError) as exc:
            raise BenchError(f"{key or name}: {exc}") from exc


def check_kwargs(factory: Callable[..., Any], kwargs: dict[str, Any], key: str) -> None:
    """Reject parameters the factory does not take, naming the key path and the accepted ones."""
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for name in kwargs:
        if name not in accepted:
            raise BenchError(f"{key}.{name}: unknown parameter; expected one of {', '.join(accepted) or '(none)'}")
