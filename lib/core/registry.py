"""A name → object registry, in the style of timm's ``@register_model`` and BasicSR's ``ARCH_REGISTRY``.

Example::

    SR_MODULES = Registry("SR module")

    @SR_MODULES.register("vdsr_ca")
    class VDSRCA(nn.Module): ...

    model = SR_MODULES.build("vdsr_ca", scale=4)

A *family* stands for open-ended names under one prefix (``BACKBONES.register_family("timm:", TimmBackbone,
timm.is_model, "a timm model name")``: ``timm:resnet18``, ``timm:convnext_tiny`` … all resolve to ``TimmBackbone``).
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
        self._families: dict[str, tuple[Any, Callable[[str], bool], str]] = {}

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
        family = next((p for p in self._families if name.startswith(p)), None)
        if family is not None:
            raise ValueError(f"{self.kind} {name!r} falls under the family {family!r}")
        self._objects[name] = obj

    def register_family(self, prefix: str, obj: Any, accepts: Callable[[str], bool], describe: str) -> Any:
        """Register ``obj`` for every name ``prefix + rest`` whose ``rest`` passes ``accepts``.

        Exact names (:meth:`register`) are looked up first; :meth:`names` lists exact names only.

        Args:
            prefix: The names' common start, e.g. ``"timm:"`` (no exact name may start with it).
            obj: The object every such name resolves to.
            accepts: Whether a ``rest`` is a valid member (``timm.is_model``).
            describe: What ``rest`` must be, for error messages (``"a timm model name"``).

        Returns:
            ``obj``.

        Raises:
            ValueError: If the prefix is taken, or an exact name already starts with it.
        """
        if not isinstance(prefix, str) or not prefix:
            raise TypeError(f"{self.kind} family prefix must be a non-empty str, found {prefix!r}")
        clash = [n for n in self._objects if n.startswith(prefix)] + [p for p in self._families if
                                                                      p.startswith(prefix) or prefix.startswith(p)]
        if clash:
            raise ValueError(f"{self.kind} family {prefix!r} clashes with {clash[0]!r}")
        self._families[prefix] = (obj, accepts, describe)
        return obj

    def _family_hint(self) -> str:
        return "".join(f"; and {p}<{d}>" for p, (_, _, d) in sorted(self._families.items()))

    def get(self, name: str) -> Any:
        """Return the object registered under ``name`` (an exact name, else a family member).

        Raises:
            UnknownNameError: (a ``KeyError``) naming the kind, the name and every registered name (and family); for a
                name under a family's prefix, what the rest must be.
        """
        if isinstance(name, str) and name in self._objects:
            return self._objects[name]
        if isinstance(name, str):
            for prefix, (obj, accepts, describe) in self._families.items():
                if name.startswith(prefix):
                    rest = name[len(prefix):]
                    if accepts(rest):
                        return obj
                    raise UnknownNameError(f"unknown {self.kind} {name!r}: {rest!r} is not {describe}")
        registered = ", ".join(self.names()) or "(none)"
        raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {registered}{self._family_hint()}")

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
        """Remove the exact name ``name`` and return its object (tests that register a temporary entry clean up with it).

        Raises:
            UnknownNameError: as :meth:`get` (a family member is not an entry of its own).
        """
        obj = self.get(name)
        if name not in self._objects:
            raise UnknownNameError(f"{self.kind} {name!r} is a member of a family, not a registered name")
        del self._objects[name]
        return obj

    def __getitem__(self, name: str) -> Any:
        """``REG[name]``: :meth:`get`."""
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in self._objects:
            return True
        return any(name.startswith(p) and accepts(name[len(p):]) for p, (_, accepts, _) in self._families.items())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._objects)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()!r})"
