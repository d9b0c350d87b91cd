"""AudioRingBuffer: timeline repair (gaps, duplicates, reordering, loops), NaN, resampling."""

import itertools

import numpy as np
import pytest

from avag_core.events import AudioRingBuffer, EventConfig, StreamingResampler

SR = 16000
T0_NS = 1_700_000_000_123_456_789  # realistic epoch stamp in nanoseconds
T0 = T0_NS / 1e9


def ramp(n, start=0):
    """Distinct values so any misplaced sample is visible."""
    return (np.arange(start, start + n, dtype=np.float64) % 10007 / 10007.0).astype(np.float32)


def push_stream(buf, x, chunk=512, t0_ns=T0_NS, skip=(), stamp_jitter=None):
    rng = np.random.default_rng(0)
    for k, i in enumerate(range(0, x.size, chunk)):
        ns = t0_ns + i * 1_000_000_000 // SR
        if stamp_jitter and k > 0:  # the segment's first stamp anchors the timeline
            ns += int(rng.uniform(-stamp_jitter, stamp_jitter) * 1e9)
        if k in skip:
            continue
        buf.push(x[i:i + chunk], ns, SR)


def test_contiguous_chunks_extract_exact_samples():
    buf = AudioRingBuffer()
    x = ramp(SR * 3)
    push_stream(buf, x)
    got, t_first = buf.extract(T0 + 1.0, T0 + 1.5)
    np.testing.assert_array_equal(got, x[SR:SR + SR // 2])
    assert t_first == pytest.approx(T0 + 1.0, abs=1e-6)
    assert buf.end_time == pytest.approx(T0 + 3.0, abs=1e-6)
    assert buf.stats.accepted == buf.stats.chunks and buf.stats.gaps == 0


def test_stamp_jitter_within_tolerance_is_ignored():
    buf = AudioRingBuffer()
    x = ramp(SR * 2)
    push_stream(buf, x, stamp_jitter=0.008)
    assert buf.stats.gaps == 0 and buf.stats.overlaps == 0
    got, _ = buf.extract(T0 + 0.5, T0 + 1.0)
    np.testing.assert_array_equal(got, x[SR // 2:SR])


def test_gap_is_zero_filled_and_later_audio_stays_on_its_stamp():
    buf = AudioRingBuffer()
    x = ramp(SR * 2)
    push_stream(buf, x, skip={10, 11})  # two 512-sample chunks lost
    assert buf.stats.gaps == 1
    assert buf.stats.gap_seconds == pytest.approx(1024 / SR, abs=1e-4)
    got, _ = buf.extract(T0, T0 + 2.0)
    assert got.size == 2 * SR
    np.testing.assert_array_equal(got[5120:6144], 0.0)
    np.testing.assert_array_equal(got[6144:], x[6144:])
    np.testing.assert_array_equal(got[:5120], x[:5120])


def test_duplicates_and_out_of_order_are_dropped_and_counted():
    buf = AudioRingBuffer()
    x = ramp(512 * 4)
    buf.push(x[:512], T0, SR)
    buf.push(x[512:1024], T0 + 512 / SR, SR)
    r = buf.push(x[512:1024] * 0 + 9, T0 + 512 / SR, SR)
    assert r.status == "duplicate"
    r = buf.push(np.full(512, 9, np.float32), T0 + 0.01, SR)  # older than the last stamp
    assert r.status == "out_of_order"
    buf.push(x[1024:1536], T0 + 1024 / SR, SR)
    assert (buf.stats.duplicates, buf.stats.out_of_order) == (1, 1)
    got, _ = buf.extract(T0, T0 + 1536 / SR)
    np.testing.assert_array_equal(got, x[:1536])


def test_overlapping_chunk_is_trimmed():
    buf = AudioRingBuffer()
    x = ramp(4096)
    buf.push(x[:2048], T0, SR)
    # restamped 50 ms early: its first 800 samples repeat audio already held
    r = buf.push(x[1248:3296], T0 + 1248 / SR, SR)
    assert r.status == "ok" and buf.stats.overlaps == 1
    got, _ = buf.extract(T0, buf.end_time)
    np.testing.assert_array_equal(got, x[:3296])


def test_time_jumping_backwards_resets_history():
    buf = AudioRingBuffer()
    x = ramp(SR * 2)
    push_stream(buf, x)
    r = buf.push(np.ones(512, np.float32), T0_NS, SR)  # bag looped to its start
    assert r.reset and buf.stats.time_resets == 1
    assert len(buf) == 512
    got, _ = buf.extract(T0 - 1.0, T0 + 1.0)
    np.testing.assert_array_equal(got, 1.0)


@pytest.mark.parametrize("policy", ["drop", "zero"])
def test_nonfinite_samples(policy):
    buf = AudioRingBuffer(EventConfig(nonfinite=policy))
    x = ramp(1536)
    bad = x[512:1024].copy()
    bad[[3, 100]] = [np.nan, np.inf]
    buf.push(x[:512], T0, SR)
    r = buf.push(bad, T0 + 512 / SR, SR)
    buf.push(x[1024:], T0 + 1024 / SR, SR)
    assert buf.stats.nonfinite_chunks == 1 and buf.stats.nonfinite_samples == 2
    got, _ = buf.extract(T0, T0 + 1536 / SR)
    assert np.isfinite(got).all()
    if policy == "drop":
        assert r.status == "nonfinite_dropped" and buf.stats.gaps == 1
        np.testing.assert_array_equal(got[512:1024], 0.0)
    else:
        expected = x[512:1024].copy()
        expected[[3, 100]] = 0.0
        np.testing.assert_array_equal(got[512:1024], expected)
    np.testing.assert_array_equal(got[1024:], x[1024:])


def sine(freq, rate, seconds, phase_t0=0.0):
    t = phase_t0 + np.arange(int(rate * seconds)) / rate
    return np.sin(2 * np.pi * freq * t).astype(np.float32)


@pytest.mark.parametrize("rate", [48000, 44100, 8000])
def test_other_rates_are_resampled_on_the_same_timeline(rate):
    buf = AudioRingBuffer()
    x = sine(440.0, rate, 2.0)
    chunk = rate * 32 // 1000
    for i in range(0, x.size, chunk):
        buf.push(x[i:i + chunk], T0 + i / rate, rate)
    assert buf.stats.resampled_chunks > 0
    got, t_first = buf.extract(T0 + 1.0, T0 + 1.25)
    ref = np.sin(2 * np.pi * 440.0 * (t_first - T0 + np.arange(got.size) / SR))
    assert got.size == SR // 4
    assert np.max(np.abs(got - ref)) < 2e-3


def test_stereo_is_averaged_to_mono():
    buf = AudioRingBuffer()
    left, right = ramp(512), -0.5 * ramp(512)
    buf.push(np.stack([left, right]), T0, SR)
    got, _ = buf.extract(T0, T0 + 512 / SR)
    np.testing.assert_allclose(got, (left + right) / 2, atol=1e-7)


def test_rate_change_mid_stream_is_counted_and_continues():
    buf = AudioRingBuffer()
    handed = []
    x48 = sine(440, 48000, 0.5)
    for i in range(0, x48.size, 1536):  # 48 kHz first, then the driver switches to 16 kHz
        handed.append(buf.push(x48[i:i + 1536], T0 + i / 48000, 48000))
    handed.append(buf.push(sine(440, SR, 0.5, phase_t0=0.5), T0 + 0.5, SR))
    assert sum(r.samples.size for r in handed) == SR
    assert all(a.t0 + a.samples.size / SR == pytest.approx(b.t0) for a, b in itertools.pairwise(handed))
    assert buf.stats.rate_changes == 1 and buf.stats.gaps == 0
    # every written sample was handed out once, on the buffer's timeline
    assert buf.end_time == pytest.approx(T0 + 1.0, abs=1e-6)
    got, t_first = buf.extract(T0 + 0.6, T0 + 0.9)
    ref = np.sin(2 * np.pi * 440.0 * (t_first - T0 + np.arange(got.size) / SR))
    assert np.max(np.abs(got - ref)) < 2e-3


def test_rate_change_can_reset_or_be_rejected():
    buf = AudioRingBuffer(EventConfig(reset_on_rate_change=True))
    buf.push(np.ones(SR, np.float32), T0, SR)
    r = buf.push(np.zeros(4800, np.float32), T0 + 1.0, 48000)
    assert r.reset and len(buf) < SR and buf.stats.rate_changes == 1
    strict = AudioRingBuffer(EventConfig(sample_rate_policy="drop"))
    assert strict.push(np.zeros(4800, np.float32), T0, 48000).status == "rate_dropped"
    assert strict.stats.rate_rejected == 1 and len(strict) == 0


def test_capacity_wraps_and_padding():
    buf = AudioRingBuffer(EventConfig(buffer_s=11.0, max_event_s=10.0))
    x = ramp(SR * 15)
    push_stream(buf, x, chunk=4000)
    assert len(buf) == 11 * SR
    assert buf.start_time == pytest.approx(T0 + 4.0, abs=1e-6)
    got, t_first = buf.extract(T0 + 3.0, T0 + 5.0)  # first second is gone
    np.testing.assert_array_equal(got, x[4 * SR:5 * SR])
    assert t_first == pytest.approx(T0 + 4.0, abs=1e-6)
    padded, _ = buf.extract(T0 + 3.0, T0 + 5.0, pad=True)
    assert padded.size == 2 * SR
    np.testing.assert_array_equal(padded[:SR], 0.0)
    np.testing.assert_array_equal(padded[SR:], x[4 * SR:5 * SR])
    latest, _ = buf.latest(0.5)
    np.testing.assert_array_equal(latest, x[-SR // 2:])


def test_resampler_chunking_matches_one_shot_and_length_is_exact():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.1, 44100).astype(np.float32)
    one = StreamingResampler(44100, SR)
    a = np.concatenate([one.process(x), one.flush()])
    many = StreamingResampler(44100, SR)
    parts = [many.process(x[i:i + 777]) for i in range(0, x.size, 777)]
    b = np.concatenate([*parts, many.flush()])
    assert a.size == b.size == SR
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_whole_file_resampled_in_one_call_is_computed_in_blocks_with_the_same_samples():
    """A whole recording in one ``process`` call (``load_mono``) is computed in blocks of
    outputs, so that it does not gather [outputs x taps] windows at once (a 3-minute 44.1 kHz
    file took 4.7 GB that way); the samples across block edges are those of a chunked feed."""
    from avag_core.events import resample

    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.1, 3 * 44100 + 123).astype(np.float32)  # 48 045 outputs: 3 blocks
    one = StreamingResampler(44100, SR)
    a = np.concatenate([one.process(x), one.flush()])
    many = StreamingResampler(44100, SR)
    b = np.concatenate([*(many.process(x[i:i + 1000]) for i in range(0, x.size, 1000)), many.flush()])
    assert a.size == b.size == -(-x.size * SR // 44100) > 2 * resample._BLOCK
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="off_db"):
        EventConfig(on_db=3.0, off_db=6.0).validate()
    with pytest.raises(ValueError, match="busy_min_event_s must be <= max_event_s"):
        EventConfig(busy_min_event_s=2.0, max_event_s=1.0).validate()
    with pytest.raises(ValueError, match="nonfinite"):
        AudioRingBuffer(EventConfig(nonfinite="ignore"))
