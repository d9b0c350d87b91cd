"""The one source of truth for every setting: nested dataclasses filled from presets,
YAML files and ``--set key.sub=value`` command-line overrides, in that order.

A preset is a YAML file in ``avag_core/presets/`` (``paper``, ``realtime``, ``tiny``...);
``load_config("realtime")`` and ``load_config("path/to/file.yaml")`` both work. Unknown
keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from avag_core.data.config import DataConfig
from avag_core.errors import AvagError
from avag_core.modeling.config import ModelConfig
from avag_core.training.config import TrainConfig

PRESET_DIR = Path(__file__).resolve().parent / "presets"

T = TypeVar("T")


@dataclass
class AvagConfig:
    """Everything a run needs; saved inside every checkpoint."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise AvagError(f"unknown config key(s) {', '.join(where + k for k in unknown)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, where + name)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise AvagError(f"config key {where} must be a mapping, got {value!r}")
        return from_dict(tp, value, where + ".")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, where) if len(args) == 1 else value
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        seq = [_coerce(inner, v, where) for v in value]
        return tuple(seq) if origin is tuple else seq
    if tp is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise AvagError(f"config key {where} expects a boolean, got {value!r}")
        return bool(value)
    if tp in (int, float, str):
        try:
            return tp(value)
        except (TypeError, ValueError):
            raise AvagError(f"config key {where} expects {tp.__name__}, got {value!r}") from None
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise AvagError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise AvagError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AvagError(f"config {path} must be a mapping at the top level")
    # A file may start from a preset: `base: realtime`.
    base = data.pop("base", None)
    if base:
        data = merge(_resolve_raw(str(base)), data)
    return data


def _resolve_raw(name_or_path: str) -> dict[str, Any]:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return _read_yaml(path)
    preset = PRESET_DIR / f"{name_or_path}.yaml"
    if not preset.exists():
        raise AvagError(
            f"unknown preset or config file {name_or_path!r} (presets: {', '.join(preset_names())})"
        )
    return _read_yaml(preset)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["train.lr=1e-4", "model.num_queries=16"]`` -> nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise AvagError(f"override {item!r} must look like section.key=value")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def validate(cfg: AvagConfig) -> AvagConfig:
    """Every documented setting within its range (``avag_core.settings``), else one line.

    Checkpoints and YAML files are outside input: ``model.image_size: 16384`` must be a
    clear error, not an out-of-memory traceback minutes later.
    """
    from avag_core.settings import check_all

    try:
        check_all(cfg)
    except ValueError as exc:
        raise AvagError(f"config: {exc}") from None
    return cfg


def load_config(
    name_or_path: str | None = "realtime", overrides: list[str] | None = None
) -> AvagConfig:
    raw = _resolve_raw(name_or_path) if name_or_path else {}
    raw = merge(raw, parse_overrides(overrides))
    return validate(from_dict(AvagConfig, raw))


def config_from_dict(data: dict[str, Any]) -> AvagConfig:
    return validate(from_dict(AvagConfig, data))


def save_config(cfg: AvagConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def add_config_args(parser: Any, default: str | None = "realtime") -> None:
    """The same two flags on every CLI that takes a config."""
    parser.add_argument(
        "--config",
        default=default,
        help=f"preset name ({', '.join(preset_names())}) or YAML file (default: {default})",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set train.lr=1e-4 (repeatable)",
    )
