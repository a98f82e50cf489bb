"""A name → object registry, in the style of timm's ``@register_model`` and BasicSR's ``ARCH_REGISTRY``.

Example::

    SR_MODULES = Registry("SR module")

    @SR_MODULES.register("vdsr_ca")
    class VDSRCA(nn.Module): ...

    model = SR_MODULES.build("vdsr_ca", scale=4)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Registry", "UnknownNameError"]


class UnknownNameError(KeyError, ValueError):
    """A ``KeyError`` whose ``str()`` is the plain message (``KeyError`` would wrap it in quotes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry:
    """Maps names to objects (classes or factory functions) of one kind.

    Args:
        kind: A human noun used in error messages, e.g. ``"SR module"``, ``"backbone"``, ``"loss term"``.
    """

    def __init__(self, kind: str) -> None:
        if not isinstance(kind, str) or not kind:
            raise TypeError(f"Registry kind must be a non-empty str, found {kind!r}")
        self.kind = kind
        self._objects: dict[str, Any] = {}

    def register(self, name: str | None = None, obj: Any = None) -> Any:
        """Register ``obj`` under ``name``, directly or as a decorator.

        Usable as ``@REG.register("vdsr_ca")``, ``@REG.register()`` (the name is ``obj.__name__.lower()``),
        bare ``@REG.register``, or directly as ``REG.register("x", obj)``.

        Args:
            name: The registry name; ``None`` derives it from ``obj.__name__.lower()``.
            obj: The object to register; ``None`` returns a decorator.

        Returns:
            ``obj`` itself (or, when used as a decorator factory, a decorator that returns its argument).

        Raises:
            ValueError: If the name is already registered.
            TypeError: If the name is not a non-empty str or cannot be derived from ``obj``.
        """
        if obj is None and name is not None and not isinstance(name, str):
            if not callable(name):
                raise TypeError(f"{self.kind} name must be a str, found {type(name).__name__} {name!r}")
            obj, name = name, None  # bare ``@REG.register`` without parentheses

        if obj is None:

            def decorator(target: Any) -> Any:
                self._add(name, target)
                return target

            return decorator

        self._add(name, obj)
        return obj

    def _add(self, name: str | None, obj: Any) -> None:
        if name is None:
            derived = getattr(obj, "__name__", None)
            if not isinstance(derived, str):
                raise TypeError(f"cannot derive a {self.kind} name from {obj!r}: pass the name explicitly")
            name = derived.lower()
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} name must be a non-empty str, found {type(name).__name__} {name!r}")
        if name in self._objects:
            raise ValueError(f"{self.kind} {name!r} is already registered (to {self._objects[name]!r})")
        self._objects[name] = obj

    def get(self, name: str) -> Any:
        """Return the object registered under ``name``.

        Raises:
            UnknownNameError: (a ``KeyError``) naming the kind, the name and every registered name.
        """
        if isinstance(name, str) and name in self._objects:
            return self._objects[name]
        registered = ", ".join(self.names()) or "(none)"
        raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {registered}")

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the object registered under ``name`` with the given arguments and return the result."""
        factory: Callable[..., Any] = self.get(name)
        return factory(*args, **kwargs)

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._objects)

    def in_order(self) -> list[Any]:
        """The registered objects in the order they were registered (how a table lists methods)."""
        return list(self._objects.values())

    def unregister(self, name: str) -> Any:
        """Remove ``name`` and return its object (tests that register a temporary entry clean up with it).

        Raises:
            UnknownNameError: as :meth:`get`.
        """
        obj = self.get(name)
        del self._objects[name]
        return obj

    def __getitem__(self, name: str) -> Any:
        """``REG[name]``: :meth:`get`."""
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._objects

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._objects)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()!r})"
