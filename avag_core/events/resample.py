"""Chunk-by-chunk sample-rate conversion with a windowed-sinc polyphase table.

A stateful resampler is needed because microphones deliver 44.1/48 kHz audio in small
chunks and per-chunk resampling without history clicks at every chunk boundary. The
output timeline is exact: after ``n`` input samples exactly ``ceil(n * out / in)``
output samples have been produced once ``flush`` is called; before that the last few
are held back (the filter needs look-ahead of ``half_width`` input samples).
"""

from __future__ import annotations

import math

import numpy as np

_PHASES = 512  # fractional-delay resolution of the table (1/512 input sample)
_ZERO_CROSSINGS = 16  # sinc lobes each side: ~70 dB stop band with the Kaiser window
_MAX_RATIO = 64  # in/out beyond this needs a table of > 2 MB per ratio step: refused
_BLOCK = 16384  # outputs computed together: bounds the gathered windows to ~10 MB


class StreamingResampler:
    """Convert a mono float32 stream from ``in_rate`` to ``out_rate`` in arbitrary chunks."""

    def __init__(self, in_rate: int, out_rate: int, rolloff: float = 0.92) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        if in_rate > _MAX_RATIO * out_rate:
            # the filter (and its table) grows with the ratio: 1e9 -> 16k Hz would need 8 GiB
            raise ValueError(f"resampling {in_rate} -> {out_rate} Hz is a ratio above {_MAX_RATIO}: refused")
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        cutoff = min(1.0, out_rate / in_rate) * rolloff  # in units of the input Nyquist
        self.half_width = math.ceil(_ZERO_CROSSINGS / cutoff)
        taps = np.arange(-self.half_width + 1, self.half_width + 1, dtype=np.float64)
        phase = np.arange(_PHASES + 1, dtype=np.float64)[:, None] / _PHASES
        d = taps[None, :] - phase  # distance of each tap from the output position
        window = np.kaiser(2 * self.half_width + 1, 8.0)
        w = np.interp(d, np.arange(-self.half_width, self.half_width + 1), window)
        table = cutoff * np.sinc(cutoff * d) * w
        table /= table.sum(axis=1, keepdims=True)  # unity DC gain for every phase
        self._table = table.astype(np.float32)
        self._offsets = np.arange(-self.half_width + 1, self.half_width + 1)
        self.reset()

    def reset(self) -> None:
        """Forget all history (the next sample starts a new stream)."""
        self._buf = np.zeros(self.half_width, dtype=np.float32)  # zero pre-history
        self._pos_num = self.half_width * self.out_rate  # next output position * out_rate
        self._n_in = 0
        self._n_out = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed input samples; return every output sample that can be computed now."""
        x = np.asarray(x, dtype=np.float32).ravel()
        if self.in_rate == self.out_rate:
            self._n_in += x.size
            self._n_out += x.size
            return x.copy()
        self._buf = np.concatenate([self._buf, x])
        self._n_in += x.size
        return self._emit(limit=None)

    def flush(self) -> np.ndarray:
        """Emit the held-back tail (zero look-ahead) so the output length is exact, then reset."""
        if self.in_rate == self.out_rate:
            self.reset()
            return np.zeros(0, dtype=np.float32)
        total = -(-self._n_in * self.out_rate // self.in_rate)  # ceil
        self._buf = np.concatenate([self._buf, np.zeros(self.half_width, dtype=np.float32)])
        out = self._emit(limit=total - self._n_out)
        self.reset()
        return out

    def _emit(self, limit: int | None) -> np.ndarray:
        last_index = self._buf.size - self.half_width  # largest floor(position) with full taps
        # outputs k = 0.. with floor((pos_num + k*in)/out) <= last_index - 1
        max_num = last_index * self.out_rate
        if self._pos_num >= max_num:
            return np.zeros(0, dtype=np.float32)
        n = (max_num - self._pos_num - 1) // self.in_rate + 1
        if limit is not None:
            n = max(0, min(n, limit))
        taps = self._offsets.size
        if self._pos_num % self.out_rate == 0 and self.in_rate % self.out_rate == 0:
            # integer ratio (48k, 32k -> 16k): phase is always 0, windows are a strided view
            step = self.in_rate // self.out_rate
            first = self._pos_num // self.out_rate - self.half_width + 1
            buf = np.ascontiguousarray(self._buf)
            windows = np.ndarray((n, taps), np.float32, buf, first * 4, (step * 4, 4))
            out = windows @ self._table[0]
        else:  # in blocks: a whole file at once would gather [outputs x taps] windows (GBs)
            out = np.empty(n, np.float32)
            for a in range(0, n, _BLOCK):
                num = self._pos_num + np.arange(a, min(n, a + _BLOCK), dtype=np.int64) * self.in_rate
                base = num // self.out_rate
                phase = ((num % self.out_rate) * _PHASES + self.out_rate // 2) // self.out_rate
                idx = base[:, None] + self._offsets[None, :]
                out[a:a + num.size] = np.einsum("ij,ij->i", self._buf[idx], self._table[phase])
        self._n_out += n
        next_num = self._pos_num + n * self.in_rate
        drop = max(0, int(next_num // self.out_rate) - self.half_width + 1)
        drop = min(drop, self._buf.size)
        self._buf = self._buf[drop:]
        self._pos_num = next_num - drop * self.out_rate
        return out.astype(np.float32, copy=False)
