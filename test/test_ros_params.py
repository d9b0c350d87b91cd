"""config/avag.yaml and the node's parameters come from one dataclass and cannot drift."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO_ROOT


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_shipped_yaml_matches_node_config():
    from avag_ros.params import NodeConfig, build, flatten

    shipped = yaml.safe_load((REPO_ROOT / "config" / "avag.yaml").read_text())
    values = _flat(shipped["avag_node"]["ros__parameters"])
    assert values == flatten(NodeConfig())
    assert build(values) == NodeConfig()


def test_bad_parameter_values_are_refused_with_their_name():
    from avag_ros.params import NodeConfig, build, flatten

    values = flatten(NodeConfig())
    with pytest.raises(ValueError, match="image_qos_reliability"):
        build({**values, "image_qos_reliability": "sometimes"})
    with pytest.raises(ValueError, match="off_db"):
        build({**values, "events.off_db": 20.0, "events.on_db": 10.0})
