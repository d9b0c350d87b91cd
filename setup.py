"""pip install path: avag_core (and avag_ros) without a ROS workspace.

`pip install .` is enough for offline training and evaluation (avag_core never imports
ROS). The ROS nodes additionally need rclpy and the generated `avag` interfaces, built
either by colcon (robot) or by scripts/setup.sh against the PyPI ROS 2 wheels.
"""

from setuptools import find_packages, setup

setup(
    name="avag",
    version="0.1.0",
    description="Audio-visual affordance grounding for ROS 2 robots (AVAGFormer)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["avag_core", "avag_core.*", "avag_ros", "avag_ros.*"]),
    package_data={"avag_core": ["presets/*.yaml", "checkpoints/*", "data/synth/recordings/*"]},
    # torch is deliberately unpinned: on a Jetson it comes from NVIDIA's JetPack build
    # and pip must not replace it. Pins for a workstation live in requirements/.
    install_requires=[
        "torch>=2.1",
        "torchaudio>=2.1",
        "timm>=0.9",
        "numpy>=1.23",
        "pyyaml",
        "safetensors",
        "soundfile",
        "tqdm",
        "opencv-python-headless",
    ],
    extras_require={
        "train": ["tensorboard"],
        "export": ["onnx", "onnxruntime"],
        "ros": ["rosbags", "rosbags-image", "sounddevice"],
        "test": ["pytest"],
    },
    entry_points={
        "console_scripts": [
            "avag = avag_core.cli.main:main",
            "avag_node = avag_ros.nodes.avag_node:main",
            "audio_capture_node = avag_ros.nodes.audio_capture_node:main",
            "avag_bag_player = avag_ros.bag.player:main",
        ]
    },
)
