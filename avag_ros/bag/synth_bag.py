"""Turn AV-AG dataset samples into a realistic rosbag2 for replay and node tests.

Each sample becomes one scene of ``scene_s`` seconds: a 30 Hz camera stream of the image
(with sensor noise), a plausible depth map and camera_info, and continuous 16 kHz audio
in 32 ms AudioFrames: background noise throughout (plus, with ``backgrounds``, real speech
and music recordings under everything), and the sample's action sound starting
``sound_at_s`` into the scene. With ``distractors``, each scene also holds a sound that is
not an action (speech, a cough, clapping, music, an alarm...) ``distractor_at_s`` into it:
the node must hear it and give it no masks. The ground truth (masks, category, sound
start/end) goes on its own topic as an AffordanceDetection stamped at the sound onset;
a distractor's has category ``none/<kind>`` and empty masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avag_core.errors import AvagError

TOPICS = {
    "image": ("/camera/color/image_raw", "sensor_msgs/msg/Image"),
    "depth": ("/camera/aligned_depth_to_color/image_raw", "sensor_msgs/msg/Image"),
    "camera_info": ("/camera/color/camera_info", "sensor_msgs/msg/CameraInfo"),
    "audio": ("/audio/audio", "avag/msg/AudioFrame"),
    "ground_truth": ("/avag/ground_truth", "avag/msg/AffordanceDetection"),
}
CAMERA_FRAME = "camera_color_optical_frame"
MIC_FRAME = "mic_link"
BAG_START_NS = 1_700_000_000 * 10**9  # fixed: bags are byte-for-byte reproducible
DISTRACTOR_PREFIX = "none/"  # ground-truth category of a sound that is not an action


@dataclass
class SynthBagConfig:
    scene_s: float = 3.0  # how long each sample is shown
    sound_at_s: float = 1.0  # when its action sound starts within the scene
    max_sound_s: float = 1.6  # longer sounds are cut (keeps one event per scene)
    tail_s: float = 1.5  # noise after the last scene, so its event can end (release time)
    fps: float = 30.0
    sample_rate: int = 16000
    chunk: int = 512  # 32 ms audio frames
    noise_dbfs: float = -55.0  # background noise level
    sound_peak: float = 0.5  # action sounds are normalised to this peak
    fx: float = 300.0  # focal length in pixels (for 256 px images: ~80 degree FoV)
    seed: int = 0
    # real recordings played throughout, under the actions: paths of any audio files, or
    # "speech" / "music" for the recordings shipped with avag; () = noise only
    backgrounds: tuple[str, ...] = ()
    background_snr_db: float = 30.0  # actions' active power over the background's power
    # sounds that are not actions, one per scene in turn (distractor kinds of
    # avag_core.data.synth.distractors; "speech" and "music" use the shipped recordings)
    distractors: tuple[str, ...] = ()
    distractor_at_s: float = 3.6  # when it starts within the scene (after the action's event ended)
    max_distractor_s: float = 1.0


DEMO_DISTRACTORS = ("speech", "cough", "clapping", "music", "alarm", "footsteps")
DEMO_BACKGROUNDS = ()
DEMO_BACKGROUND_SNR_DB = 20.0


def demo_bag_config(seed: int, backgrounds: tuple[str, ...] = DEMO_BACKGROUNDS,
                    background_snr_db: float = DEMO_BACKGROUND_SNR_DB) -> SynthBagConfig:
    """The demo's bag: every scene an action, then a sound that is not one, over
    ``backgrounds`` (real recordings under the whole track)."""
    return SynthBagConfig(seed=seed, scene_s=5.0, distractors=DEMO_DISTRACTORS, backgrounds=backgrounds,
                          background_snr_db=background_snr_db)


@dataclass
class Scene:
    rgb: np.ndarray
    function_mask: np.ndarray
    dependency_mask: np.ndarray
    sound: np.ndarray  # 16 kHz mono float32
    category: str
    image_path: str


def load_scenes(data_dir: Path, split: str, limit: int | None) -> list[Scene]:
    """Read ``<data_dir>/<split>.csv`` rows (AVAGD layout) into scenes."""
    from avag_core.data.audio_io import load_audio
    from avag_core.data.dataset import load_mask, load_rgb
    from avag_core.data.rows import read_rows, resolve_csv
    from avag_core.modeling.audio_frontend import to_mono_16k

    rows = read_rows(data_dir, resolve_csv(data_dir, f"{split}.csv"))
    if limit:
        rows = rows[:limit]
    if not rows:
        raise AvagError(f"{data_dir}/{split}.csv has no rows")
    scenes = []
    for row in rows:
        rgb = load_rgb(row.image)
        size = rgb.shape[:2]
        wave, rate = load_audio(row.audio)
        sound = to_mono_16k(wave, rate).numpy().astype(np.float32)
        scenes.append(Scene(rgb, load_mask(row.mask_func, size), load_mask(row.mask_dep, size),
                            sound, row.category, str(row.image_rel)))
    return scenes


def plausible_depth(mask_any: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint16 millimetres: a tilted floor/wall plane at ~1.5 m, the object at ~0.8 m."""
    h, w = mask_any.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    background = 1.5 + 0.3 * (yy / h) + 0.05 * (xx / w)
    obj = 0.8 + 0.02 * np.sin(xx / w * np.pi)
    depth_m = np.where(mask_any, obj, background)
    depth_m += rng.normal(0.0, 0.002, size=depth_m.shape).astype(np.float32)
    return np.clip(depth_m * 1000.0, 0, 65535).astype(np.uint16)


def camera_k(width: int, height: int, fx: float) -> np.ndarray:
    return np.array([[fx, 0, (width - 1) / 2], [0, fx, (height - 1) / 2], [0, 0, 1]], np.float64)


def write_synth_bag(
    scenes: list[Scene], out: Path, cfg: SynthBagConfig | None = None, storage: str = "mcap"
) -> dict:
    """Write the bag; returns a summary with the ground-truth event times (ns)."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from sensor_msgs.msg import CameraInfo

    from avag.msg import AffordanceDetection
    from avag_ros.bag.typestore import avag_typestore
    from avag_ros.conversions import make_header, numpy_to_audio_frame, numpy_to_image

    cfg = cfg or SynthBagConfig()
    if Path(out).exists():
        raise AvagError(f"output bag {out} already exists")
    rng = np.random.default_rng(cfg.seed)
    store = avag_typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(out, version=9, storage_plugin=plugin)
    writer.open()
    conns = {k: writer.add_connection(t, ty, typestore=store) for k, (t, ty) in TOPICS.items()}
    scene_ns = round(cfg.scene_s * 1e9)
    total_ns = scene_ns * len(scenes) + round(cfg.tail_s * 1e9)

    # audio track: noise + sounds, then chunked
    sr = cfg.sample_rate
    n_total = round(total_ns * sr / 1e9)
    noise_amp = 10 ** (cfg.noise_dbfs / 20.0)
    track = (rng.normal(0.0, noise_amp, n_total)).astype(np.float32)
    events, spans, sounds = [], [], []
    for i, scene in enumerate(scenes):
        sound = scene.sound[: int(cfg.max_sound_s * sr)]
        peak = float(np.max(np.abs(sound))) or 1.0
        sound = sound * (cfg.sound_peak / peak)
        start = round((i * cfg.scene_s + cfg.sound_at_s) * sr)
        end = min(start + sound.size, n_total)
        track[start:end] += sound[: end - start]
        events.append((BAG_START_NS + start * 10**9 // sr, BAG_START_NS + end * 10**9 // sr))
        spans.append((start, end))
        sounds.append(sound)
    bg_names = _add_backgrounds(track, spans, sounds, cfg)
    distractor_events = _add_distractors(track, len(scenes), cfg)

    frame_ns = 1e9 / cfg.fps
    n_frames = int(total_ns // frame_ns)
    chunk_ns = cfg.chunk * 10**9 // sr
    for i, scene in enumerate(scenes):  # one scene at a time: memory stays bounded
        messages: list[tuple[int, str, bytes]] = []
        k0 = int(np.ceil(i * scene_ns / chunk_ns)) * cfg.chunk
        last_scene = i == len(scenes) - 1
        k1 = n_total - cfg.chunk + 1
        if not last_scene:  # the last scene also carries the tail
            k1 = min(int(np.ceil((i + 1) * scene_ns / chunk_ns)) * cfg.chunk, k1)
        for k in range(k0, k1, cfg.chunk):
            stamp = BAG_START_NS + k * 10**9 // sr
            msg = numpy_to_audio_frame(track[k : k + cfg.chunk], sr, header=make_header(stamp, MIC_FRAME))
            messages.append((stamp, "audio", serialize_message(msg)))
        h, w = scene.rgb.shape[:2]
        depth = plausible_depth(scene.function_mask | scene.dependency_mask, rng)
        info = CameraInfo(height=h, width=w, distortion_model="plumb_bob")
        info.k = camera_k(w, h, cfg.fx).reshape(-1).tolist()
        info.d = [0.0] * 5
        info.r = np.eye(3).reshape(-1).tolist()
        info.p = np.hstack([camera_k(w, h, cfg.fx), np.zeros((3, 1))]).reshape(-1).tolist()
        onset, end = events[i]
        gt = AffordanceDetection()
        gt.header = make_header(onset, CAMERA_FRAME)
        gt.event_start, gt.event_end = make_header(onset).stamp, make_header(end).stamp
        gt.event_onset = gt.event_start
        gt.action_label = scene.category
        gt.action_confidence = 1.0
        gt.function_mask = numpy_to_image(scene.function_mask.astype(np.uint8) * 255, "mono8", gt.header)
        gt.dependency_mask = numpy_to_image(scene.dependency_mask.astype(np.uint8) * 255, "mono8", gt.header)
        gt.function_area = float(scene.function_mask.mean())
        gt.dependency_area = float(scene.dependency_mask.mean())
        messages.append((onset, "ground_truth", serialize_message(gt)))
        if i < len(distractor_events):
            d_on, d_end, kind = distractor_events[i]
            dt = AffordanceDetection()
            dt.header = make_header(d_on, CAMERA_FRAME)
            dt.event_start, dt.event_end = make_header(d_on).stamp, make_header(d_end).stamp
            dt.event_onset = dt.event_start
            dt.action_label = f"{DISTRACTOR_PREFIX}{kind}"
            empty = np.zeros(scene.function_mask.shape, np.uint8)
            dt.function_mask = numpy_to_image(empty, "mono8", dt.header)
            dt.dependency_mask = numpy_to_image(empty, "mono8", dt.header)
            messages.append((d_on, "ground_truth", serialize_message(dt)))
        first = int(np.ceil(i * scene_ns / frame_ns))
        last = n_frames if last_scene else min(int(np.ceil((i + 1) * scene_ns / frame_ns)), n_frames)
        for f in range(first, last):
            stamp = BAG_START_NS + round(f * frame_ns)
            header = make_header(stamp, CAMERA_FRAME)
            noisy = np.clip(scene.rgb.astype(np.int16) + rng.integers(-2, 3, scene.rgb.shape), 0, 255)
            info.header = header
            messages.append((stamp, "image", serialize_message(numpy_to_image(noisy.astype(np.uint8), "rgb8", header))))
            messages.append((stamp, "depth", serialize_message(numpy_to_image(depth, "16UC1", header))))
            messages.append((stamp, "camera_info", serialize_message(info)))
        messages.sort(key=lambda m: m[0])  # stable: same-stamp order as appended
        for stamp, key, data in messages:
            writer.write(conns[key], stamp, data)
    writer.close()
    return {
        "bag": str(out),
        "scenes": len(scenes),
        "duration_s": total_ns / 1e9,
        "events_ns": events,
        "categories": [s.category for s in scenes],
        "backgrounds": bg_names,
        "distractors_ns": [(a, b) for a, b, _k in distractor_events],
        "distractor_kinds": [k for _a, _b, k in distractor_events],
    }


def distractor_sound(kind: str, rng: np.random.Generator, cfg: SynthBagConfig,
                     shipped: dict[str, np.ndarray]) -> np.ndarray:
    """One sound that is not an action, at most ``max_distractor_s`` long, float32 16 kHz;
    ``shipped``: the shipped recordings by name, loaded at ``cfg.sample_rate``."""
    from avag_core.data.synth.distractors import DISTRACTOR_KINDS, synth_distractor_sound

    sr = cfg.sample_rate
    n = round(rng.uniform(0.6, 1.0) * cfg.max_distractor_s * sr)
    if kind in shipped:  # always available, unlike espeak-ng and the music packages
        rec = shipped[kind]
        start = int(rng.integers(0, max(1, rec.size - n)))
        return rec[start : start + n].astype(np.float32)
    if kind not in DISTRACTOR_KINDS:
        raise AvagError(f"unknown distractor {kind!r}; known: {', '.join(DISTRACTOR_KINDS)}")
    return synth_distractor_sound(kind, rng, sr, duration=n / sr)


def _add_distractors(track: np.ndarray, n_scenes: int, cfg: SynthBagConfig) -> list[tuple[int, int, str]]:
    """Place one distractor per scene (in place); returns (onset ns, end ns, kind) each."""
    if not cfg.distractors:
        return []
    from avag_core.data.synth.backgrounds import load_mono, shipped_by_name

    sr = cfg.sample_rate
    rng = np.random.default_rng(cfg.seed + 2)  # own stream: the rest of the bag stays as without
    shipped = {name: load_mono(path, sr) for name, path in shipped_by_name().items() if name in cfg.distractors}
    out = []
    for i in range(n_scenes):
        kind = cfg.distractors[i % len(cfg.distractors)]
        sound = distractor_sound(kind, rng, cfg, shipped)
        sound = sound * (cfg.sound_peak / (float(np.max(np.abs(sound))) or 1.0))
        start = round((i * cfg.scene_s + cfg.distractor_at_s) * sr)
        end = min(start + sound.size, track.size)
        track[start:end] += sound[: end - start]
        out.append((BAG_START_NS + start * 10**9 // sr, BAG_START_NS + end * 10**9 // sr, kind))
    return out


def _add_backgrounds(track: np.ndarray, spans: list[tuple[int, int]], sounds: list[np.ndarray],
                     cfg: SynthBagConfig) -> list[str]:
    """Lay real background recordings under the whole track (in place); returns their names."""
    from avag_core.data.synth.backgrounds import (
        active_power,
        background_power,
        background_track,
        load_mono,
        shipped_by_name,
    )

    shipped = shipped_by_name()
    paths = [shipped[b] if b in shipped else Path(b) for b in cfg.backgrounds]
    for name, path in zip(cfg.backgrounds, paths, strict=True):
        if not path.is_file():
            raise AvagError(f"background {name!r}: no such audio file (shipped ones: {', '.join(sorted(shipped))})")
    if not paths or not spans:
        return []
    sr = cfg.sample_rate
    rng = np.random.default_rng(cfg.seed + 1)  # own stream: images and noise stay as without
    recs = [load_mono(p, sr) for p in paths]
    bg = background_track(recs, track.size / sr, rng, sr, excerpt_s=(2.0, 6.0))[: track.size]
    action_power = float(np.mean([active_power(s, sr) for s in sounds]))
    bp = background_power(bg)
    if bp > 0.0:
        bg *= np.sqrt(action_power / bp * 10 ** (-cfg.background_snr_db / 10))
    track[: bg.size] += bg
    return [p.name for p in paths]
