"""A live robot stand-in for the node benchmarks: camera, depth, camera_info and a
microphone published in real time from synthetic scenes, stamped with the wall clock.

Each scene is shown for ``scene_s`` seconds with its action sound ``sound_at_s`` into it,
so there is one sound event every ``scene_s`` seconds (after ``idle_s`` seconds of only
background noise, used to measure the node's cost while nothing happens). Audio is
published the way a microphone delivers it: a 32 ms chunk once its last sample is in.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class FeedConfig:
    width: int = 640
    height: int = 480
    fps: float = 30.0
    scene_s: float = 3.0  # one event per scene
    sound_at_s: float = 1.0
    max_sound_s: float = 1.0
    idle_s: float = 0.0  # leading seconds with background noise only
    sample_rate: int = 16000
    chunk: int = 512
    noise_dbfs: float = -55.0
    sound_peak: float = 0.5
    fx: float = 525.0
    seed: int = 0


@dataclass
class FedEvent:
    onset_ns: int  # wall-clock stamp of the sound's first sample
    end_ns: int
    scene: int


class LiveFeed:
    """Publishes on ``node`` (a plain rclpy node) until ``duration_s`` or ``stop``."""

    TOPICS = ("/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw",
              "/camera/color/camera_info", "/audio/audio")

    def __init__(self, node: Any, scenes: list[Any], cfg: FeedConfig | None = None) -> None:
        import cv2
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        from avag.msg import AudioFrame
        from avag_ros.bag.synth_bag import camera_k, plausible_depth

        self.cfg = cfg = cfg or FeedConfig()
        rng = np.random.default_rng(cfg.seed)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        types = dict(zip(self.TOPICS, (Image, Image, CameraInfo, AudioFrame), strict=True))
        self.pubs = {t: node.create_publisher(ty, t, qos) for t, ty in types.items()}
        w, h, sr = cfg.width, cfg.height, cfg.sample_rate
        self.frames, self.depths, self.sounds = [], [], []
        for scene in scenes:
            rgb = cv2.resize(scene.rgb, (w, h), interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize((scene.function_mask | scene.dependency_mask).astype(np.uint8), (w, h),
                              interpolation=cv2.INTER_NEAREST) > 0
            self.frames.append(rgb.tobytes())
            self.depths.append(plausible_depth(mask, rng).tobytes())
            sound = scene.sound[: int(cfg.max_sound_s * sr)]
            self.sounds.append((sound * (cfg.sound_peak / (float(np.abs(sound).max()) or 1.0))).astype(np.float32))
        self.info = CameraInfo(width=w, height=h, distortion_model="plumb_bob")
        self.info.header.frame_id = "camera_color_optical_frame"
        self.info.k = camera_k(w, h, cfg.fx).reshape(-1).tolist()
        self.noise = rng.normal(0.0, 10 ** (cfg.noise_dbfs / 20), 10 * sr).astype(np.float32)
        self.events: list[FedEvent] = []
        self.published = 0
        self.frames_published = 0

    def wait_for_subscribers(self, timeout_s: float, alive: Any = lambda: True) -> bool:
        deadline = time.monotonic() + timeout_s
        while any(p.get_subscription_count() == 0 for p in self.pubs.values()):
            if time.monotonic() > deadline or not alive():
                return False
            time.sleep(0.05)
        return True

    def _audio(self, t0: float, n: int) -> np.ndarray:
        """``n`` samples of the stream starting at feed time ``t0`` (noise + scene sounds)."""
        cfg, sr = self.cfg, self.cfg.sample_rate
        k0 = round(t0 * sr)
        x = self.noise[np.arange(k0, k0 + n) % self.noise.size].copy()
        if t0 + n / sr <= cfg.idle_s:
            return x
        i = int((t0 - cfg.idle_s) // cfg.scene_s)
        for scene in (i - 1, i, i + 1):  # sounds that overlap this chunk
            if scene < 0:
                continue
            sound = self.sounds[scene % len(self.sounds)]
            s0 = round((cfg.idle_s + scene * cfg.scene_s + cfg.sound_at_s) * sr)
            a, b = max(k0, s0), min(k0 + n, s0 + sound.size)
            if a < b:
                x[a - k0:b - k0] += sound[a - s0:b - s0]
        return x

    def run(self, duration_s: float, stop: threading.Event | None = None) -> list[FedEvent]:
        from sensor_msgs.msg import Image

        from avag_ros.conversions import make_header, numpy_to_audio_frame

        cfg, sr = self.cfg, self.cfg.sample_rate
        w, h = cfg.width, cfg.height
        chunk_s = cfg.chunk / sr
        mono0, wall0 = time.monotonic(), time.time_ns()
        frame_i, chunk_i = 0, 0
        while True:
            t_frame, t_chunk_ready = frame_i / cfg.fps, (chunk_i + 1) * chunk_s
            t_next = min(t_frame, t_chunk_ready)
            if t_next > duration_s or (stop is not None and stop.is_set()):
                break
            while (now := time.monotonic() - mono0) < t_next:
                time.sleep(min(t_next - now, 0.002))
            if t_frame <= t_chunk_ready:
                scene = int(max(0.0, t_frame - cfg.idle_s) // cfg.scene_s) % len(self.frames)
                header = make_header(wall0 + round(t_frame * 1e9), "camera_color_optical_frame")
                self.pubs[self.TOPICS[0]].publish(Image(header=header, height=h, width=w, encoding="rgb8",
                                                        step=w * 3, data=self.frames[scene]))
                self.pubs[self.TOPICS[1]].publish(Image(header=header, height=h, width=w, encoding="16UC1",
                                                        step=w * 2, data=self.depths[scene]))
                self.info.header.stamp = header.stamp
                self.pubs[self.TOPICS[2]].publish(self.info)
                frame_i += 1
                self.published += 3
                self.frames_published += 1
            else:
                t0 = chunk_i * chunk_s
                x = self._audio(t0, cfg.chunk)
                self.pubs[self.TOPICS[3]].publish(numpy_to_audio_frame(
                    x, sr, header=make_header(wall0 + round(t0 * 1e9), "mic_link")))
                chunk_i += 1
                self.published += 1
        n_events = int(max(0.0, duration_s - cfg.idle_s - cfg.sound_at_s - 1.0) // cfg.scene_s) + 1
        self.events = []
        for i in range(n_events):
            onset = cfg.idle_s + i * cfg.scene_s + cfg.sound_at_s
            if onset + self.sounds[i % len(self.sounds)].size / sr <= duration_s:
                self.events.append(FedEvent(wall0 + round(onset * 1e9),
                                            wall0 + round((onset + self.sounds[i % len(self.sounds)].size / sr) * 1e9),
                                            i % len(self.sounds)))
        return self.events


def proc_memory(pid: int) -> dict[str, float]:
    """A process's memory in MB from /proc: ``rss``, ``peak`` (the most RSS it has held),
    ``anon`` (its own heap: what it costs the machine), ``file`` (pages of mapped files, mostly
    shared libraries: shared between processes and dropped first when memory runs short)
    and ``shmem``; ``rss`` = ``anon`` + ``file`` + ``shmem``."""
    keys = {"VmRSS:": "rss", "VmHWM:": "peak", "RssAnon:": "anon", "RssFile:": "file", "RssShmem:": "shmem"}
    out = dict.fromkeys(keys.values(), 0.0)
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            name = line.split(None, 1)[0]
            if name in keys:
                out[keys[name]] = int(line.split()[1]) / 1024
    return out


def proc_stats(pid: int) -> tuple[float, float, float]:
    """(cpu seconds, RSS MB, peak RSS MB) of a process from /proc."""
    import os

    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    mem = proc_memory(pid)
    return cpu, mem["rss"], mem["peak"]
