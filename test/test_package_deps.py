"""Every module the installed code imports is declared: ROS and Debian packages in
package.xml (what rosdep installs), Python packages in requirements/robot*.txt (pip), torch
and its companions left to the machine (JetPack), optional ones imported only where used.
A new import without a declaration fails here, naming the file."""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET

from conftest import REPO_ROOT

# What colcon installs as Python code (CMakeLists.txt): the two packages, the launchers, launch/.
INSTALLED = [
    *sorted((REPO_ROOT / "avag_core").rglob("*.py")),
    *sorted((REPO_ROOT / "avag_ros").rglob("*.py")),
    *sorted((REPO_ROOT / "launch").glob("*.py")),
    *(REPO_ROOT / "scripts" / exe for exe in ("avag", "avag_node", "audio_capture_node", "avag_bag_player")),
]
FIRST_PARTY = {"avag", "avag_core", "avag_ros"}

# import name -> how it is declared
ROS = {  # package.xml key (ROS packages: same name)
    "rclpy", "rcl_interfaces", "rosgraph_msgs", "builtin_interfaces", "std_msgs", "std_srvs", "sensor_msgs",
    "geometry_msgs", "visualization_msgs", "diagnostic_msgs", "lifecycle_msgs", "ament_index_python",
    "launch", "launch_ros",
}
DEBIAN = {"numpy": "python3-numpy", "yaml": "python3-yaml", "cv2": "python3-opencv", "PIL": "python3-pil",
          "tqdm": "python3-tqdm"}
PIP = {"safetensors": "safetensors", "soundfile": "soundfile", "sounddevice": "sounddevice", "rosbags": "rosbags",
       "onnx": "onnx", "onnxruntime": "onnxruntime", "timm": "timm", "numpy": "numpy", "yaml": "pyyaml",
       "cv2": "opencv-python-headless", "PIL": "pillow", "tqdm": "tqdm"}
MACHINE = {"torch", "torchvision", "torchaudio"}  # the installed build (JetPack, conda, source): never pip
OPTIONAL = {  # imported inside a function, only for the feature that needs it
    "audio_common_msgs": "audio_type=audio_common / audio_common_stamped",
    "tensorrt": "the tensorrt backend (comes with JetPack)",
}
EXTRA_PIP = {"rosbags-image", "huggingface_hub"}  # listed for what they give imported packages
# run-time needs without a Python import of their own: generated-message runtime, rviz:=true,
# the lifecycle services rclpy.lifecycle serves, std_srvs for the node's services (SetBool)
EXTRA_ROS = {"rosidl_default_runtime", "rviz2", "lifecycle_msgs", "std_srvs"}


def imports() -> dict[str, list[tuple[str, bool]]]:
    """Top-level module -> [(file, imported at module level)] for third-party imports."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for path in INSTALLED:
        tree = ast.parse(path.read_text(), str(path))
        top_level = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in FIRST_PARTY or top in sys.stdlib_module_names:
                    continue
                found.setdefault(top, []).append((str(path.relative_to(REPO_ROOT)), id(node) in top_level))
    return found


def package_xml_keys() -> set[str]:
    root = ET.parse(REPO_ROOT / "package.xml").getroot()
    return {e.text.strip() for e in root if e.tag in ("depend", "exec_depend")}


def pip_names() -> set[str]:
    names = set()
    for file in ("robot.txt", "robot-nodeps.txt"):
        for line in (REPO_ROOT / "requirements" / file).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(line.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip().lower())
    return names


def test_every_import_of_the_installed_code_is_declared():
    keys, pips = package_xml_keys(), pip_names()
    for module, where in sorted(imports().items()):
        files = sorted({f for f, _ in where})
        if module in MACHINE:
            assert module not in pips, f"{module} must not be in requirements/robot*.txt (it replaces JetPack's)"
        elif module in OPTIONAL:
            eager = sorted(f for f, top in where if top)
            assert not eager, f"optional {module} ({OPTIONAL[module]}) imported at module level in {eager}"
        elif module in ROS:
            assert module in keys, f"{module} (imported in {files}) is missing from package.xml"
        elif module in PIP or module in DEBIAN:
            if module in DEBIAN:
                assert DEBIAN[module] in keys, f"{DEBIAN[module]} (import {module} in {files}) missing from package.xml"
            assert PIP[module] in pips, f"{PIP[module]} (import {module} in {files}) missing from requirements/robot.txt"
        else:
            raise AssertionError(f"import {module} in {files} is not declared: add it to package.xml (ROS/Debian) or "
                                 f"requirements/robot.txt (pip), and to the tables in this test")


def test_nothing_declared_is_unused():
    used = set(imports())
    keys, pips = package_xml_keys(), pip_names()
    ros_used = {k for k in keys if k in used} | {DEBIAN[m] for m in used if m in DEBIAN}
    assert keys - ros_used - EXTRA_ROS == set(), "package.xml declares what nothing imports"
    pip_used = {PIP[m] for m in used if m in PIP}
    assert pips - pip_used - EXTRA_PIP == set(), "requirements/robot*.txt lists what nothing imports"


def test_msg_dependencies_are_build_dependencies():
    """Every package a .msg field refers to is a <depend> (built against and exported)."""
    root = ET.parse(REPO_ROOT / "package.xml").getroot()
    depends = {e.text.strip() for e in root if e.tag == "depend"}
    for msg in (REPO_ROOT / "msg").glob("*.msg"):
        for line in msg.read_text().splitlines():
            field = line.split("#", 1)[0].split()
            if field and "/" in field[0]:
                assert field[0].split("/")[0] in depends, f"{msg.name}: {field[0]}"
    cmake = (REPO_ROOT / "CMakeLists.txt").read_text()
    for pkg in sorted(depends):
        assert f"find_package({pkg} REQUIRED)" in cmake, pkg
