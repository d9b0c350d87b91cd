"""audio_capture_node records a real (virtual) microphone: PulseAudio plays a WAV into it."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import soundfile as sf

from conftest import run_proc, stop_proc


def test_capture_node_publishes_stamped_chunks_of_what_was_played(ros_env, virtual_mic, tmp_path):
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    from avag.msg import AudioFrame

    env = {**ros_env, **{k: virtual_mic[k] for k in ("XDG_RUNTIME_DIR", "HOME")}}
    # 0.8 s silence, 0.6 s of a 1 kHz tone, 0.8 s silence; 44.1 kHz stereo (PulseAudio resamples)
    sr = 44100
    t = np.arange(int(0.6 * sr)) / sr
    tone = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    clip = np.concatenate([np.zeros(int(0.8 * sr)), tone, np.zeros(int(0.8 * sr))])
    wav = tmp_path / "tone.wav"
    sf.write(wav, np.stack([clip, clip], 1).astype(np.float32), sr, subtype="FLOAT")

    bag = tmp_path / "mic_bag"
    rec = run_proc(["-m", "avag_ros.bag.recorder", "--out", str(bag), "--best-effort",
                    "--topic", "/audio/audio:avag/msg/AudioFrame"], env)
    node = run_proc(["-m", "avag_ros.nodes.audio_capture_node", "--ros-args",
                     "-p", "sample_rate:=16000", "-p", "chunk_size:=512", "-p", "frame_id:=test_mic"], env)
    try:
        time.sleep(3.0)  # node opened the stream and the recorder matched it
        assert node.poll() is None, node.stdout.read()
        play = subprocess.run(["paplay", str(wav)], env=env, capture_output=True, text=True, timeout=30)
        assert play.returncode == 0, play.stderr
        time.sleep(1.0)
    finally:
        node_out = stop_proc(node)
        rec_out = stop_proc(rec)
    assert "capturing from" in node_out, node_out

    frames = []
    with Reader(bag) as reader:
        for _c, _t, raw in reader.messages():
            frames.append(deserialize_message(raw, AudioFrame))
    assert len(frames) > 50, rec_out  # > 1.6 s of audio
    assert {(f.sample_rate, f.channels, f.samples_per_channel, f.sample_format) for f in frames} == {
        (16000, 1, 512, "F32LE")
    }
    assert {f.header.frame_id for f in frames} == {"test_mic"}
    stamps = np.array([f.header.stamp.sec * 10**9 + f.header.stamp.nanosec for f in frames])
    steps = np.diff(stamps)
    # stamped at the first sample from a sample counter: exactly 32 ms apart (bar resyncs)
    assert np.mean(np.abs(steps - 32_000_000) <= 1) > 0.9, steps

    audio = np.concatenate([np.frombuffer(bytes(f.data), "<f4") for f in frames])
    rms = np.sqrt(np.convolve(audio**2, np.ones(1600) / 1600, mode="same"))
    loud = rms > 0.1
    assert 0.4 * 16000 < loud.sum() < 0.8 * 16000  # the 0.6 s tone, nothing else
    seg = audio[loud]
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    peak_hz = np.argmax(spectrum) * 16000 / seg.size
    assert abs(peak_hz - 1000.0) < 20.0
