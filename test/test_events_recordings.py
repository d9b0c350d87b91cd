"""Event detection on real AVAGD recordings (and synthetic action sounds) placed at known times.

Each clip is mixed over background noise; the reference onset of a clip is where its own
10 ms RMS first rises ``on_db`` above the background level and stays there for 30 ms, its
offset where the RMS is last above it, measured on the clean clip, independent of the
detector's adaptive floor and hysteresis. Why 30 ms: a recording's own room tone can touch
the level in one 10 ms blip (gas_stove: at 30 ms, 140 ms before the igniter's click, 40 dB
up), and that blip is not the action's onset.
"""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_clips import DETECTORS

from avag_core.events import AudioEventTracker, EventConfig, StreamingResampler, detect_events

DATA = Path(__file__).parent / "data" / "avagd"
# Single-action clips (one event each). Left out: bike and hammer (steady riding / a series of
# hits with long pauses) and bottle_cap (many separate twists): several events are right there.
CLIPS = ["axe", "drawer", "faucet", "gas_stove", "soap_dispenser", "switch", "utility_knife"]
BG_DB = -60.0
SR = 16000
T0_NS = 1_700_000_000_000_000_000


def load(name):
    (path,) = sorted((DATA / name).glob("*/*.mp3"))
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    return x.T, rate  # [channels, n]


def reference_span(mono, rate, level_db, hold=3):
    """First time the clean clip's 10 ms RMS exceeds level_db for ``hold`` frames in a row
    (a click shorter than that: its first loud frame), last time it exceeds it."""
    n = rate // 100
    frames = mono[: mono.size // n * n].reshape(-1, n)
    rms_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(rms_db > level_db)
    held = np.flatnonzero(np.convolve(rms_db > level_db, np.ones(hold), "valid") == hold)
    return (held[0] if held.size else loud[0]) * n / rate, (loud[-1] + 1) * n / rate


def build_mix(rate, gap_s=2.5, seed=0):
    """Stereo mix at ``rate``: clips placed over noise.

    Returns the mix and per clip (name, start, early, on, off, end): the detector may fire
    from ``early`` (flux onset, >= flux_min_db over the background) and must by ``on``
    (energy onset, >= on_db over the background); ``off`` is the last loud 10 ms.
    """
    clips = []
    for name in CLIPS:
        x, r = load(name)
        assert r == rate
        clips.append((name, x))
    total = int((gap_s + sum(x.shape[1] / rate + gap_s for _, x in clips)) * rate)
    mix = np.random.default_rng(seed).normal(0, 10 ** (BG_DB / 20), (2, total)).astype(np.float32)
    spans, t = [], gap_s
    for name, x in clips:
        i = int(t * rate)
        mix[:, i:i + x.shape[1]] += x
        spans.append(clip_span(name, x.mean(axis=0), rate, t))
        t += x.shape[1] / rate + gap_s
    return mix, spans


def clip_span(name, mono, rate, t):
    cfg = EventConfig()
    on, off = reference_span(mono, rate, BG_DB + cfg.on_db)
    # the flux detector sees a sound band by band, before its broadband level stands out:
    # it may fire anywhere from where the clip starts
    return (name, t, t, t + on, t + off, t + mono.size / rate)


def check_each_clip_heard(events, spans, t_base):
    """The learned detector: every clip heard at its onset and no event outside the clips.
    A new onset ends the event in progress, so a clip of several strokes (the axe: three
    chops) gives one event per stroke; flux merges strokes closer than release_s."""
    for name, start, early, on, _off, end in spans:
        hits = [e for e in events if e.end_time > t_base + start and e.start_time < t_base + end]
        assert hits, name
        assert t_base + early - 0.05 <= hits[0].onset_time <= t_base + on + 0.05, name
    inside = [e for e in events if any(t_base + start - 0.2 <= e.onset_time <= t_base + end
                                       for _n, start, _e, _on, _off, end in spans)]
    assert inside == events


def check_clips(events, spans, t_base, cfg):
    if cfg.detector == "learned":
        check_each_clip_heard(events, spans, t_base)
    else:
        check_one_event_per_clip(events, spans, t_base, cfg)


def check_one_event_per_clip(events, spans, t_base, cfg=None):
    cfg = cfg or EventConfig()
    for name, start, early, on, off, end in spans:
        hits = [e for e in events if e.end_time > t_base + start and e.start_time < t_base + end]
        assert len(hits) == 1, f"{name}: {hits}"
        ev = hits[0]
        assert t_base + early - 0.05 <= ev.onset_time <= t_base + on + 0.05, name
        assert ev.end_time >= t_base + off - 0.1, name
        assert ev.end_time <= t_base + end + cfg.release_s + cfg.post_roll_s + 0.1, name
    assert len(events) == len(spans)


@pytest.fixture(scope="module")
def mix44():
    return build_mix(44100)


@DETECTORS
def test_real_clips_streamed_at_44k_stereo_are_found_at_their_onsets(mix44, cfg):
    mix, spans = mix44
    tracker = AudioEventTracker(cfg)
    chunk = 1411  # 32 ms at 44.1 kHz, as a driver would publish
    events, audios = [], []
    for i in range(0, mix.shape[1], chunk):
        new = tracker.push(mix[:, i:i + chunk], T0_NS + i * 1_000_000_000 // 44100, 44100)
        audios += [tracker.audio_for(e) for e in new]  # as a node would, when the event ends
        events += new
    events += tracker.flush()
    t_base = T0_NS / 1e9
    check_clips(events, spans, t_base, cfg)
    assert tracker.buffer.stats.gaps == 0 and tracker.buffer.stats.resampled_chunks > 0

    # the audio handed out for an event is the clip itself, at the right place on the timeline
    name, start, *_ = spans[0]
    clip44, _ = load(name)
    rs = StreamingResampler(44100, SR)
    clip16 = np.concatenate([rs.process(clip44.mean(axis=0)), rs.flush()])
    audio = audios[0]
    assert audio.sample_rate == SR and audio.samples.size == round(events[0].duration * SR)
    offset = round((t_base + start - events[0].start_time) * SR)
    n = min(audio.samples.size - max(offset, 0), clip16.size)
    a = audio.samples[max(offset, 0):max(offset, 0) + n]
    b = clip16[max(-offset, 0):max(-offset, 0) + n]
    assert np.corrcoef(a, b)[0, 1] > 0.99


@DETECTORS
def test_real_clips_in_batch_at_16k(mix44, cfg):
    mix, spans = mix44
    events = detect_events(mix, 44100, cfg, t0=5.0)
    check_clips(events, spans, 5.0, cfg)


def test_synthetic_action_sounds_give_one_event_each():
    synth = pytest.importorskip("avag_core.data.synth")
    rng = np.random.default_rng(11)
    # "zip" is left out: a zipper is several strokes, often with pauses longer than release_s
    families = ["hit", "cut", "twist", "press", "roll", "open", "pour"]
    x = rng.normal(0, 10 ** (BG_DB / 20), 40 * SR).astype(np.float32)
    spans, t = [], 2.0
    for fam in families:
        clip = synth.synth_action_sound(fam, rng, SR)
        i = int(t * SR)
        x[i:i + clip.size] += clip
        spans.append(clip_span(fam, clip, SR, t))
        t += clip.size / SR + 2.0
    x = x[: int(t * SR)]
    # default settings: strokes of one action may split (pauses up to ~0.75 s), never spill over
    for ev in detect_events(x, SR):
        assert any(s[1] - 0.15 <= ev.start_time and ev.end_time <= s[-1] + 0.5 for s in spans)
    # a release longer than the longest pause between strokes gives one event per action
    cfg = EventConfig(release_s=0.8)
    check_one_event_per_clip(detect_events(x, SR, cfg), spans, 0.0, cfg)
