"""Test helper process: what `ros2 launch avag FILE name:=value ...` does, with only the
launch and launch_ros libraries (ros2cli need not be installed). The file is taken from the
installed package share (ament index), like `ros2 launch` does.

    python run_launch.py FILE [name:=value ...]"""

from __future__ import annotations

import signal
import sys
from pathlib import Path


def main() -> int:
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import AnyLaunchDescriptionSource

    from launch import LaunchDescription, LaunchService

    path = Path(get_package_share_directory("avag")) / "launch" / sys.argv[1]
    launch_args = [a.split(":=", 1) for a in sys.argv[2:]]
    service = LaunchService(argv=sys.argv[2:])
    service.include_launch_description(LaunchDescription([
        IncludeLaunchDescription(AnyLaunchDescriptionSource(str(path)), launch_arguments=launch_args),
    ]))
    return service.run()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))  # Ctrl-C while launch still loads
    from launch import LaunchService  # noqa: F401  (the slow imports, before launch's own handler)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    raise SystemExit(main())
