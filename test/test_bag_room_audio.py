"""`avag bag audio`: a recorded microphone topic -> WAV files, one per contiguous stretch,
that ``train_onset --room`` reads as the robot's room. A real rosbag2 file, the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from conftest import REPO_ROOT, needs_ros

pytestmark = needs_ros
T0 = 1_700_000_000 * 10**9


def _write_bag(path: Path, chunks: list[tuple[int, np.ndarray, int]], bad_at: int | None = None) -> None:
    """AudioFrames (stamp ns, [channels, n] samples, rate) on /audio/audio; the message at
    ``bad_at`` claims more samples than it carries (the node refuses such a chunk)."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer

    from avag_ros.bag.typestore import avag_typestore
    from avag_ros.conversions import make_header, numpy_to_audio_frame

    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conn = writer.add_connection("/audio/audio", "avag/msg/AudioFrame", typestore=avag_typestore())
    for i, (stamp, x, rate) in enumerate(chunks):
        msg = numpy_to_audio_frame(x, rate, header=make_header(stamp, "mic_link"))
        if i == bad_at:
            msg.samples_per_channel += 1
        writer.write(conn, stamp, serialize_message(msg))
    writer.close()


def _avag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avag_core.cli.main", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300)


def test_each_contiguous_stretch_of_the_microphone_becomes_one_room_file(tmp_path):
    """A refused chunk leaves a hole and a stamp gap or a new rate starts a new file (no
    splice that the model would learn as background); each file holds exactly the mono mix
    of its chunks, at their rate, and train_onset --room reads the folder."""
    from avag_core.events.onset_data import load_room

    rng = np.random.default_rng(0)
    a = rng.uniform(-0.5, 0.5, (2, 31 * 512)).astype(np.float32)  # stereo at 16 kHz, 32 ms chunks
    b = rng.uniform(-0.5, 0.5, (1, 19200)).astype(np.float32)  # mono at 48 kHz, 3 s later
    chunks = [(T0 + k * 32_000_000, a[:, k * 512:(k + 1) * 512], 16000) for k in range(31)]
    chunks += [(T0 + 4 * 10**9 + k * 20_000_000, b[:, k * 960:(k + 1) * 960], 48000) for k in range(20)]
    chunks.append((T0 + 9 * 10**9, a[:, :512], 16000))  # 32 ms alone: too short to be a room file
    bag = tmp_path / "room_bag"
    _write_bag(bag, chunks, bad_at=10)
    out = tmp_path / "room"
    run = _avag("bag", "audio", str(bag), "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "3 file(s)" in run.stdout and "1 message(s) refused" in run.stdout and "1 stretch(es) too short" in run.stdout, \
        run.stdout
    expected = [(a[:, : 10 * 512].mean(axis=0), 16000), (a[:, 11 * 512:].mean(axis=0), 16000), (b[0], 48000)]
    for k, (want, rate) in enumerate(expected):
        got, r = sf.read(out / f"room_bag_{k:03d}.wav", dtype="float32")
        assert r == rate and np.array_equal(got, want), k
    assert [x.size for x in load_room((str(out),))] == [10 * 512, 20 * 512, 6400]


def test_a_room_file_holds_what_the_node_hears_and_no_chunk_it_refuses(tmp_path):
    """NaN/Inf samples become 0 and samples beyond full scale are clipped, as the node's
    buffer does; a chunk at a rate the node refuses (1 Hz) is counted and leaves a hole."""
    from avag_core.events import EventConfig

    fs = EventConfig().full_scale
    rng = np.random.default_rng(1)
    a = rng.uniform(-0.5, 0.5, (2, 20 * 512)).astype(np.float32)
    a[0, 100], a[1, 700], a[0, 1300], a[1, 2000] = np.nan, np.inf, 3.0 * fs, -np.inf
    chunks = [(T0 + k * 32_000_000, a[:, k * 512:(k + 1) * 512], 16000) for k in range(10)]
    chunks.append((T0 + 10 * 32_000_000, a[:, 10 * 512:10 * 512 + 4], 1))  # 1 Hz: the node refuses it
    chunks += [(T0 + k * 32_000_000, a[:, k * 512:(k + 1) * 512], 16000) for k in range(11, 20)]
    bag = tmp_path / "room_bag"
    _write_bag(bag, chunks)
    out = tmp_path / "room"
    run = _avag("bag", "audio", str(bag), "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert "2 file(s)" in run.stdout and "1 message(s) refused" in run.stdout, run.stdout
    heard = np.clip(np.where(np.isfinite(a), a, 0.0).mean(axis=0, dtype=np.float32), -fs, fs)
    for k, part in enumerate((heard[: 10 * 512], heard[11 * 512:])):
        got, r = sf.read(out / f"room_bag_{k:03d}.wav", dtype="float32")
        assert r == 16000 and np.array_equal(got, part), k
    assert np.abs(heard).max() == fs


def test_a_bag_without_the_audio_topic_fails_with_one_line(tmp_path):
    bag = tmp_path / "bag"
    _write_bag(bag, [(T0 + k * 32_000_000, np.zeros((1, 512), np.float32), 16000) for k in range(20)])
    run = _avag("bag", "audio", str(bag), "--out", str(tmp_path / "out"), "--set", "audio_topic=/mic/audio")
    assert run.returncode == 2 and "/mic/audio" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    run = _avag("bag", "audio", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert run.returncode == 2 and "does not exist" in run.stderr
