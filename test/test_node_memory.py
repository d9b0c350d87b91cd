"""`python -m avag_ros.benchmarks.node_memory`: the node's parts loaded one at a time in a
fresh process, each line's RSS split into the process's own memory and mapped files."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import needs_ros

pytestmark = needs_ros


def test_each_part_of_the_node_is_loaded_in_order_and_its_memory_split(tmp_path):
    from avag_ros.params import NodeConfig

    out = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "avag_ros.benchmarks.node_memory", "--backend", "torch",
                           "--json", str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    parts = report["parts"]
    names = [p["part"] for p in parts]
    assert names == ["python and numpy", "rclpy", "torch", "timm (imports torchvision)", "avag modules", "model on its backend", "action head", "adapter and event detector"]
    by = {p["part"]: p for p in parts}
    assert by["model on its backend"]["detail"] == "torch"
    assert by["adapter and event detector"]["detail"] == NodeConfig().events.detector
    assert by["torch"]["detail"].split("+")[0] == __import__("torch").__version__.split("+")[0]
    for p in parts:  # the split adds up, read in one look at /proc
        assert abs(p["anon"] + p["file"] + p["shmem"] - p["rss"]) < 0.01, p
    # nothing was loaded before its line: torch alone maps libraries and allocates memory
    assert by["torch"]["anon"] > by["rclpy"]["anon"] and by["torch"]["file"] > by["rclpy"]["file"]
    # a node on the torch backend does not pay for onnxruntime's library
    assert report["onnxruntime_loaded"] is False
    assert "anon" in proc.stdout.splitlines()[0] and len(proc.stdout.splitlines()) == len(parts) + 3
