"""Node parameters come from one dataclass: config/avag.yaml (keyed `/**`, one comment per
parameter), the ROS parameter descriptors (description, range) and validation cannot drift.
A real node in its own process, under a namespace, refuses bad values with a reason the
way `ros2 param set` shows it, and `ros2 param describe` shows description and range."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import time

import pytest
import yaml

from avag_ros.param_files import flatten_mapping

from conftest import REPO_ROOT, needs_ros, run_proc, stop_proc


def test_shipped_yaml_is_generated_and_applies_to_any_node_name():
    from avag_ros.params import NodeConfig, build, flatten, to_ros_yaml

    text = (REPO_ROOT / "config" / "avag.yaml").read_text()
    assert text == to_ros_yaml(), "config/avag.yaml is stale: python -m avag_ros.params > config/avag.yaml"
    shipped = yaml.safe_load(text)
    assert list(shipped) == ["/**"]  # any node name, any namespace
    values = flatten_mapping(shipped["/**"]["ros__parameters"])
    assert values == flatten(NodeConfig())
    assert build(values) == NodeConfig()
    # one comment line right above every parameter line
    lines = text.splitlines()
    params = [i for i, line in enumerate(lines) if line.startswith("    ") and ":" in line
              and not line.strip().startswith("#") and not line.rstrip().endswith(":")]
    assert len(params) == len(values)
    assert all(lines[i - 1].strip().startswith("# ") for i in params)


@needs_ros  # descriptors are rcl_interfaces messages
def test_every_parameter_is_documented_and_numbers_have_ranges():
    from avag_ros.params import NodeConfig, descriptor, flatten

    for name, value in flatten(NodeConfig()).items():
        d = descriptor(name)
        assert d.description, f"{name} has no description"
        if isinstance(value, bool) or not isinstance(value, int | float):
            assert not d.floating_point_range and not d.integer_range, name
        elif isinstance(value, float):
            assert len(d.floating_point_range) == 1, f"{name} has no range"
            r = d.floating_point_range[0]
            assert r.from_value <= value <= r.to_value and not (math.isinf(r.from_value) and math.isinf(r.to_value))
        else:
            assert len(d.integer_range) == 1, f"{name} has no range"
            assert d.integer_range[0].from_value <= value <= d.integer_range[0].to_value


def test_live_parameters_are_the_run_time_ones():
    from avag_ros.params import NodeConfig, flatten, info, is_live

    live = {"function_threshold", "dependency_threshold", "min_mask_pixels", "overlay_alpha",
            "voxel_size", "max_depth_m", "marker_lifetime_s", "rejection_threshold"}
    assert {f.name for f in dataclasses.fields(NodeConfig) if is_live(f.name)} == live
    assert set(NodeConfig.RECONFIGURABLE) == live
    assert not is_live("device") and not is_live("no_such_name")
    for name in flatten(NodeConfig()):  # nested (events.*) ones: as their own metadata says
        assert is_live(name) == info(name).live


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("function_threshold", 1.7, "function_threshold must be <= 1.0"),
    ("function_threshold", -0.5, "function_threshold must be >= 0.0"),
    ("function_threshold", "high", "function_threshold must be float, got str"),
    ("function_threshold", math.nan, "function_threshold must be finite"),
    ("min_mask_pixels", -3, "min_mask_pixels must be >= 0"),
    ("min_mask_pixels", 2.5, "min_mask_pixels must be int, got float"),
    ("use_depth", 1, "use_depth must be bool, got int"),
    ("image_qos_reliability", "sometimes", "image_qos_reliability must be one of best_effort, reliable"),
    ("device", "gpu", "device must be cpu, cuda or cuda:N"),
    ("events.off_db", 20.0, "off_db"),
    ("no_such_parameter", 1, "unknown parameter no_such_parameter"),
])
def test_bad_values_are_refused_with_a_one_line_reason(name, value, reason):
    from avag_ros.params import NodeConfig, build, flatten

    with pytest.raises(ValueError, match=reason) as err:
        build({**flatten(NodeConfig()), name: value})
    assert "\n" not in str(err.value)


def test_ints_are_accepted_for_floats():
    from avag_ros.params import build

    assert build({"max_depth_m": 3}).max_depth_m == 3.0
    assert isinstance(build({"max_depth_m": 3}).max_depth_m, float)


def test_markdown_table_lists_every_parameter_with_its_range():
    from avag_ros.params import NodeConfig, flatten

    out = subprocess.run(["python", "-m", "avag_ros.params", "--markdown"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    rows = {line.split("`")[1]: line for line in out.splitlines() if line.startswith("| `")}
    assert set(rows) == set(flatten(NodeConfig()))
    assert "[0, 1]" in rows["function_threshold"] and "| yes |" in rows["function_threshold"]
    assert "best_effort \\| reliable" in rows["image_qos_reliability"]


# ---------------------------------------------------------------- a real node over DDS
class ParamClient:
    """What `ros2 param get/set/describe` do: calls to the node's parameter services."""

    def __init__(self, env: dict[str, str], monkeypatch, target: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter_client import AsyncParameterClient

        for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "RMW_IMPLEMENTATION", "ROS_LOG_DIR"):
            monkeypatch.setenv(key, env[key])
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("avag_param_client", context=self.context)
        self.client = AsyncParameterClient(self.node, target)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def wait(self, future, timeout: float = 30.0):
        self.executor.spin_until_future_complete(future, timeout_sec=timeout)
        assert future.done(), "no answer from the node's parameter service"
        return future.result()

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def node_under_namespace(ros_env, tmp_path, tiny_checkpoint, monkeypatch):
    """avag_node started as a user would: a namespace, the shipped parameters file and the
    user's own file (generated format, `/**` keys) with a changed threshold."""
    from avag_ros.params import NodeConfig, to_ros_yaml

    mine = tmp_path / "my.yaml"
    mine.write_text(to_ros_yaml(NodeConfig(function_threshold=0.7, checkpoint=str(tiny_checkpoint))))
    node = run_proc(["-m", "avag_ros.nodes.avag_node", "--ros-args", "-r", "__ns:=/robot1",
                     "--params-file", str(REPO_ROOT / "config" / "avag.yaml"), "--params-file", str(mine)],
                    ros_env)
    client = ParamClient(ros_env, monkeypatch, "/robot1/avag_node")
    try:
        if not client.client.wait_for_services(timeout_sec=60.0):
            pytest.fail(f"no parameter services of /robot1/avag_node: {stop_proc(node)}")
        yield client
    finally:
        client.close()
        out = stop_proc(node)
        assert "Traceback" not in out, out


@pytest.mark.ros
def test_node_refuses_bad_values_and_describes_its_parameters(node_under_namespace):
    from rcl_interfaces.msg import ParameterType
    from rclpy.parameter import Parameter

    c = node_under_namespace
    got = c.wait(c.client.get_parameters(["function_threshold", "image_qos_depth"]))
    assert [v.double_value for v in got.values[:1]] == [0.7]  # the user's file applied under /robot1
    assert got.values[1].integer_value == 15

    refused = {
        ("function_threshold", 1.7): "out of range",
        ("function_threshold", -0.5): "out of range",
        ("function_threshold", "high"): "function_threshold must be float, got str",
        ("use_depth", 1): "use_depth must be bool, got int",
        ("min_mask_pixels", -3): "out of range",
        ("audio_type", "pcm"): "audio_type must be one of avag, audio_common, audio_common_stamped",
        ("device", "gpu"): "device must be cpu, cuda or cuda:N",
    }
    for (name, value), reason in refused.items():
        (result,) = c.wait(c.client.set_parameters([Parameter(name, value=value)])).results
        assert not result.successful, (name, value)
        assert reason in result.reason and name in result.reason, result.reason

    (ok,) = c.wait(c.client.set_parameters([Parameter("function_threshold", value=0.6)])).results
    assert ok.successful, ok.reason
    now = c.wait(c.client.get_parameters(["function_threshold", "min_mask_pixels"])).values
    assert (now[0].double_value, now[1].integer_value) == (0.6, 20)  # refused values changed nothing

    described = c.wait(c.client.describe_parameters(["function_threshold", "min_mask_pixels", "audio_type"]))
    thr, pixels, audio = described.descriptors
    assert thr.type == ParameterType.PARAMETER_DOUBLE and "function mask" in thr.description
    assert audio.type == ParameterType.PARAMETER_STRING
    assert (thr.floating_point_range[0].from_value, thr.floating_point_range[0].to_value) == (0.0, 1.0)
    assert "takes effect at once" in thr.additional_constraints
    assert pixels.integer_range[0].from_value == 0 and pixels.description
    assert "avag, audio_common, audio_common_stamped" in audio.additional_constraints
    assert not audio.read_only  # accepted, applied at the next configure


@pytest.mark.ros
def test_out_of_range_value_in_a_params_file_stops_the_node_naming_it(ros_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**:\n  ros__parameters:\n    function_threshold: 1.5\n")
    node = run_proc(["-m", "avag_ros.nodes.avag_node", "--ros-args", "--params-file", str(bad)], ros_env)
    deadline = time.monotonic() + 120
    while node.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    out = stop_proc(node)
    assert node.returncode == 2, out
    assert "Traceback" not in out and out.strip().splitlines() == [
        "avag_node: error: parameter function_threshold: Parameter function_threshold out of range "
        "Min: 0.0, Max: 1.0, value: 1.5"], out
