"""The node's settings outside the node: a ROS 2 parameters file plus ``--set`` overrides
-> ``NodeConfig`` (for `avag bag eval` offline) and the same as ``--ros-args`` (for the
node process of a live replay), so a user tries settings on a bag before the robot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from avag_core.errors import AvagError
from avag_ros import params


def flatten_mapping(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML mappings -> dotted names (``events: {on_db: 8}`` -> ``events.on_db``)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten_mapping(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def read_params_file(path: Path, node_name: str = "avag_node") -> dict[str, Any]:
    """Flat ``{name: value}`` of the parameters a ROS 2 params file gives ``node_name``
    (entries keyed ``/**``, ``node_name`` or ``/any/namespace/node_name``, merged in that order)."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AvagError(f"params file {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise AvagError(f"params file {path}: expected a mapping of node names to ros__parameters")
    values: dict[str, Any] = {}
    keys = sorted(doc, key=lambda k: (k != "/**", k.count("/")))
    for key in keys:
        if key == "/**" or key.strip("/").split("/")[-1] == node_name:
            section = doc[key]
            if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
                raise AvagError(f"params file {path}: entry {key!r} has no ros__parameters mapping")
            values.update(flatten_mapping(section["ros__parameters"]))
    unknown = sorted(set(values) - set(params.flatten(params.NodeConfig())))
    if unknown:
        raise AvagError(f"params file {path}: unknown parameter(s) {', '.join(unknown)}")
    return values


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["function_threshold=0.6", "events.on_db=8"]`` -> typed values (YAML scalars)."""
    known = set(params.flatten(params.NodeConfig()))
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in known:
            raise AvagError(f"--set {item!r}: expected NAME=VALUE with a node parameter name "
                            f"(e.g. function_threshold=0.6)")
        out[name] = yaml.safe_load(raw) if raw else ""
    return out


def node_config(params_file: Path | None = None, overrides: list[str] | None = None) -> params.NodeConfig:
    """Defaults <- params file <- overrides, validated exactly as the node validates them."""
    values = params.flatten(params.NodeConfig())
    if params_file is not None:
        values.update(read_params_file(params_file))
    values.update(parse_overrides(overrides or []))
    try:
        return params.build(values)
    except (TypeError, ValueError) as exc:
        raise AvagError(f"node parameters: {exc}") from None


def node_ros_args(params_file: Path | None = None, overrides: list[str] | None = None) -> list[str]:
    """The same settings for a node process: ``--params-file`` then one ``-p`` per override."""
    args: list[str] = []
    if params_file is not None:
        args += ["--params-file", str(params_file)]
    for name, value in parse_overrides(overrides or []).items():
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        args += ["-p", f"{name}:={text}"]
    return args
