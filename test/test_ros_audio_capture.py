"""audio_capture_node records a real (virtual) microphone: PulseAudio plays a WAV into it."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import soundfile as sf

from conftest import in_ros_env, needs_ros, read_bag, run_proc, stop_proc


class Watcher:
    """An rclpy context of the test's own: sees the graph and the microphone's frames."""

    def __init__(self, env: dict[str, str]) -> None:
        import os

        import rclpy
        from rclpy.qos import qos_profile_sensor_data

        from avag.msg import AudioFrame

        saved = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")}
        os.environ.update({k: env[k] for k in saved})
        try:
            self.context = rclpy.Context()
            rclpy.init(context=self.context)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.node = rclpy.create_node("avag_mic_watch", context=self.context)
        self.stamps: list[int] = []
        self.node.create_subscription(
            AudioFrame, "/audio/audio",
            lambda m: self.stamps.append(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec), qos_profile_sensor_data)

    def recorder_matched(self) -> bool:
        return any(i.node_name == "avag_bag_recorder" for i in self.node.get_subscriptions_info_by_topic("/audio/audio"))

    def wait(self, condition, *procs, timeout: float = 30.0) -> None:
        import rclpy.executors

        executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        executor.add_node(self.node)
        deadline = time.monotonic() + timeout
        try:
            while not condition():
                assert time.monotonic() < deadline, "timed out: " + " | ".join(stop_proc(p) for p in procs)
                assert all(p.poll() is None for p in procs), " | ".join(stop_proc(p) for p in procs)
                executor.spin_once(timeout_sec=0.1)
        finally:
            executor.remove_node(self.node)
            executor.shutdown()

    def close(self) -> None:
        self.node.destroy_node()
        self.context.shutdown()


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
    watch = Watcher(env)
    try:
        # conditions, not sleeps: the recorder subscribes and the microphone publishes
        watch.wait(lambda: watch.recorder_matched() and watch.stamps, node, rec)
        play = subprocess.run(["paplay", str(wav)], env=env, capture_output=True, text=True, timeout=30)
        assert play.returncode == 0, play.stderr
        played_ns = time.time_ns()
        watch.wait(lambda: watch.stamps[-1] > played_ns + 200_000_000, node, rec)  # captured past the clip
    finally:
        watch.close()
        node_out = stop_proc(node)
        rec_out = stop_proc(rec)
    assert "capturing from" in node_out, node_out
    assert (bag / "metadata.yaml").exists(), f"the recorder closed no bag:\n{rec_out}"

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


def test_perception_node_warns_while_the_microphone_is_muted(ros_env, virtual_mic, tmp_path, shipped_checkpoint):
    """A muted microphone hears nothing, as a quiet room does, and nothing else tells them
    apart. PulseAudio mutes the virtual microphone, so the capture node publishes exact
    zeros; the perception node's /diagnostics warns once the silence reaches
    events.muted_after_s, logs the reason once, and stops warning when the microphone is
    unmuted and a sound comes in (and warns again once the room after it is as long
    silent). The whole sequence of statuses is read from the recorded bag, not polled."""
    env = {**ros_env, **{k: virtual_mic[k] for k in ("XDG_RUNTIME_DIR", "HOME")}}
    sr = 16000
    wav = tmp_path / "noise.wav"
    sf.write(wav, np.random.default_rng(0).normal(0.0, 0.1, 2 * sr).astype(np.float32), sr, subtype="FLOAT")

    def pactl(*args: str) -> None:
        done = subprocess.run(["pactl", *args], env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr

    from avag_ros.bag.recorder import LiveRecording

    pactl("set-source-mute", "vmic", "1")
    with in_ros_env(env), LiveRecording(tmp_path / "diag", [("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray")]) as rec:
        mic = run_proc(["-m", "avag_ros.nodes.audio_capture_node", "--ros-args", "-p", "sample_rate:=16000"], env)
        node = run_proc(["-m", "avag_ros.nodes.avag_node", "--ros-args", "-p", f"checkpoint:={shipped_checkpoint}",
                         "-p", "events.muted_after_s:=3.0"], env)
        try:
            def status(needle: str) -> bool:
                assert node.poll() is None and mic.poll() is None, "a node exited"
                return rec.diagnostic_status is not None and needle in rec.diagnostic_status.message

            assert rec.wait_until(lambda: status("audio: digital silence"), 90), rec.diagnostics
            pactl("set-source-mute", "vmic", "0")
            play = subprocess.run(["paplay", str(wav)], env=env, capture_output=True, text=True, timeout=30)
            assert play.returncode == 0, play.stderr
            # the room after the sound is digital silence too (nothing plays): a second stretch
            assert rec.wait_until(lambda: rec.diag_int("audio_buffer.silent_periods") >= 2, 60), rec.diagnostics
        finally:
            node_out = stop_proc(node)
            stop_proc(mic)
    statuses = [s for a in read_bag(tmp_path / "diag")["/diagnostics"] for s in a.status
                if s.name.startswith("/avag_node:")]
    muted = ["audio: digital silence" in s.message for s in statuses]
    first = muted.index(True)
    cleared = muted.index(False, first)  # the sound ended the stretch: no warning
    assert True in muted[cleared:], [s.message for s in statuses]  # the second stretch
    assert all(s.level == s.WARN for s, m in zip(statuses, muted, strict=True) if m)
    values = {kv.key: kv.value for kv in statuses[cleared].values}
    assert float(values["audio_buffer.silent_for_s"]) < 3.0 and int(values["audio_buffer.silent_periods"]) == 1
    last = {kv.key: kv.value for kv in statuses[-1].values}
    assert int(last["input.audio_issue.digital_silence"]) == int(last["audio_buffer.silent_periods"]) == 2
    # logged with its reason, throttled per kind (one line per 10 s at most)
    lines = [ln for ln in node_out.splitlines() if "audio_issue.digital_silence: " in ln]
    assert 1 <= len(lines) <= 2 and "digital silence for 3 s" in lines[0], node_out[-3000:]


def test_capture_node_refuses_bad_parameters_with_one_line(ros_env):
    """Its parameters have descriptors like avag_node's: a bad value stops it with a reason."""
    node = run_proc(["-m", "avag_ros.nodes.audio_capture_node", "--ros-args", "-p", "sample_format:=U8"], ros_env)
    node.wait(timeout=60)
    out = node.stdout.read()
    assert node.returncode == 2, out
    assert "parameter sample_format must be one of F32LE, S16LE, S32LE, got 'U8'" in out
    assert "Traceback" not in out


@needs_ros  # descriptors are rcl_interfaces messages
def test_capture_node_parameters_are_described():
    from avag_ros.params import _MIC_FIELDS, MicConfig, descriptor

    for name in MicConfig.__dataclass_fields__:
        d = descriptor(name, _MIC_FIELDS)
        assert d.description, name
    assert descriptor("sample_rate", _MIC_FIELDS).integer_range[0].from_value == 8000
    assert "F32LE, S16LE, S32LE" in descriptor("sample_format", _MIC_FIELDS).additional_constraints
