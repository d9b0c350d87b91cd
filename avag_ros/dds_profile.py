"""avag's Fast DDS single-host profile (config/fastdds_single_host.xml) for the processes
avag starts itself (live replay, demo, benchmarks), as the launch files do for a robot.

Why: with Fast DDS defaults a best-effort reader on the same host receives only a small
fraction of VGA frames (the 512 KB shared-memory segment is smaller than one image, and
the UDP fallback drops fragments under load); lost frames, not only latency.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "FASTDDS_DEFAULT_PROFILES_FILE"


def single_host_profile() -> Path:
    """The profile in this checkout, or the one installed in share/avag/config."""
    here = Path(__file__).resolve().parents[1] / "config" / "fastdds_single_host.xml"
    if here.is_file():
        return here
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("avag")) / "config" / "fastdds_single_host.xml"


def use_single_host_profile(env: dict[str, str] | None = None) -> None:
    """Set the profile in ``env`` (default: this process) unless the user chose one."""
    target = os.environ if env is None else env
    target.setdefault(ENV, str(single_host_profile()))
