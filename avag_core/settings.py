"""Documented settings: one dataclass field carries a setting's default, its description
and its allowed values, so ROS parameters (descriptor, range), the YAML file (comments),
the CLI (``--set``) and validation are all generated from the same place.

    @dataclass
    class MyConfig:
        threshold: float = setting(0.5, "probability above which a pixel is in the mask", lo=0.0, hi=1.0)
        mode: str = setting("onset", "how events are cut", choices=("onset", "continuous"))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SettingInfo:
    """What a setting means and which values it accepts (``lo``/``hi`` inclusive)."""

    doc: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] | None = None
    live: bool = False  # may change while running (ROS: ``ros2 param set`` takes effect at once)

    def check(self, name: str, value: Any) -> None:
        """Raise ValueError naming ``name`` when ``value`` is outside what is allowed."""
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        if value != value:  # NaN
            raise ValueError(f"{name} must be a number, got NaN")
        if self.lo is not None and value < self.lo:
            raise ValueError(f"{name} must be >= {self.lo}, got {value!r}")
        if self.hi is not None and value > self.hi:
            raise ValueError(f"{name} must be <= {self.hi}, got {value!r}")


def setting(
    default: Any = dataclasses.MISSING,
    doc: str = "",
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: Sequence[Any] | None = None,
    live: bool = False,
    factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with a :class:`SettingInfo` in its metadata."""
    info = SettingInfo(doc, lo, hi, tuple(choices) if choices is not None else None, live)
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata={"setting": info})
    return dataclasses.field(default=default, metadata={"setting": info})


def info_of(field: dataclasses.Field) -> SettingInfo | None:
    return field.metadata.get("setting")


def check_all(cfg: Any, prefix: str = "") -> None:
    """Validate every documented field of ``cfg`` (recursing into nested dataclasses)."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_all(value, f"{prefix}{f.name}.")
            continue
        info = info_of(f)
        if info is not None:
            info.check(f"{prefix}{f.name}", value)
