"""Lazy package attributes (PEP 562), so that light imports stay light.

A package that re-exports heavy classes (torch models, datasets) would import torch for a
caller that only wanted its config dataclass: seconds before ``avag --help`` or before the
demo could start its node. Such a package sets ``__getattr__ = lazy_attributes(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``where[name]`` (a module path relative to
    ``package``, e.g. ``".dataset"``) the first time ``name`` is asked for."""

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(import_module(where[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
