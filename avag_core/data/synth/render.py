"""Rendering one object instance: cluttered background, posed parts, per-part labels.

Textures are computed in each part's own coordinates, so a part type keeps its look
(grain, ridges, teeth, spokes...) under any rotation, scale, mirror or colour.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .world import Category, Part

Rng = np.random.Generator

_UNIT_SHAPES = {
    "rect": [(-1, -1), (1, -1), (1, 1), (-1, 1)],
    "triangle": [(-1, -1), (1, 0), (-1, 1)],
    "trapezoid": [(-1, -1), (1, -0.45), (1, 0.45), (-1, 1)],
    "ellipse": [(np.cos(t), np.sin(t)) for t in np.linspace(0, 2 * np.pi, 48, endpoint=False)],
}


# Small parts are enlarged so every function region covers a learnable area.
_PART_BOOST = {"button": 1.4, "knob": 1.25, "spout": 1.35, "zipper": 1.25, "lid": 1.2,
               "blade": 1.15, "wheel": 1.15, "head": 1.1}  # fmt: skip


@dataclass
class Rendered:
    image: np.ndarray  # [H, W, 3] uint8
    labels: np.ndarray  # [H, W] int16, -1 = background, else index into parts
    parts: list[Part]

    def mask(self, kind: str | None) -> np.ndarray:
        """Visible pixels of every part of type ``kind`` (all zero for None)."""
        out = np.zeros(self.labels.shape, dtype=bool)
        if kind is None:
            return out
        for i, part in enumerate(self.parts):
            if part.kind == kind:
                out |= self.labels == i
        return out


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1)))


def _mix(c0: np.ndarray, c1: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0, 1)[:, None]
    return c0[None] * (1 - t) + c1[None] * t


def _texture(kind: str, a: np.ndarray, b: np.ndarray, part: Part, rng: Rng) -> np.ndarray:
    """RGB in [0,1] for pixels at part coordinates (a, b) in [-1, 1]."""
    long_is_a = part.hw >= part.hh
    along, across = (a, b) if long_is_a else (b, a)
    along_len = max(part.hw, part.hh) / max(min(part.hw, part.hh), 1e-6)
    r = np.sqrt(a**2 + b**2)
    th = np.arctan2(b, a)
    if kind == "body":
        base = _hsv(rng.random(), rng.uniform(0.25, 0.9), rng.uniform(0.35, 0.9))
        style = rng.integers(3)
        if style == 0:
            shade = np.zeros_like(a)
        elif style == 1:
            shade = 0.12 * (rng.random(a.shape) - 0.5)
        else:
            shade = 0.1 * np.sin(2.5 * a + 1.7 * b + rng.uniform(0, 6))
        rgb = base[None] * (1 + shade[:, None] - 0.15 * (b[:, None] + 1) / 2)
    elif kind == "handle":
        base = _hsv(rng.uniform(0.03, 0.1), rng.uniform(0.4, 0.8), rng.uniform(0.22, 0.45))
        grain = 0.22 * np.sin(across * np.pi * 5 + 1.5 * np.sin(along * along_len * 2))
        rgb = base[None] * (1 + grain[:, None])
    elif kind == "blade":
        light, dark = _hsv(0.6, 0.05, 0.95), _hsv(0.6, 0.08, 0.55)
        rgb = _mix(dark, light, (across + 1) / 2)
        rgb[across > 0.7] = _hsv(0, 0, 1.0)
    elif kind == "head":
        base = _hsv(rng.uniform(0.55, 0.65), 0.15, rng.uniform(0.25, 0.4))
        hatch = np.sign(np.sin(a * 7 * np.pi) * np.sin(b * 7 * np.pi))
        rgb = base[None] * (1 + 0.25 * hatch[:, None])
    elif kind == "knob":
        h = rng.random()
        light, dark = _hsv(h, 0.5, 0.85), _hsv(h, 0.6, 0.3)
        ridges = (np.sin(16 * th) > 0).astype(float)
        rgb = _mix(dark, light, np.where(r < 0.35, 0.6, ridges))
    elif kind == "button":
        body = _hsv(rng.choice([0.0, 0.33, 0.6, 0.15]) + rng.uniform(-0.03, 0.03), 0.9, 0.9)
        rgb = np.repeat(body[None], a.shape[0], axis=0)
        rgb[r < 0.38] = _hsv(0, 0, 1.0)
        rgb[np.maximum(np.abs(a), np.abs(b)) > 0.85] *= 0.45
    elif kind == "wheel":
        tyre, hub = _hsv(0, 0, rng.uniform(0.05, 0.15)), _hsv(0, 0, rng.uniform(0.6, 0.8))
        spokes = (np.abs(np.sin(3 * th)) < 0.25) | (r < 0.18)
        rgb = np.where((r > 0.62)[:, None], tyre[None], hub[None] * 0.55)
        rgb[(r <= 0.62) & spokes] = hub
    elif kind == "lid":
        base = _hsv(rng.random(), rng.uniform(0.2, 0.6), rng.uniform(0.45, 0.75))
        rgb = np.repeat(base[None], a.shape[0], axis=0)
        cell = np.mod(along * along_len * 1.5, 1.0) - 0.5
        rivet = cell**2 * 4 + across**2 < 0.25
        rgb[rivet] = _hsv(0.12, 0.3, 1.0)
        rgb[np.abs(across) > 0.75] *= 0.6
    elif kind == "spout":
        base = _hsv(0.58, 0.05, rng.uniform(0.8, 0.95))
        rgb = base[None] * (0.55 + 0.45 * np.cos(across * np.pi / 2))[:, None]
        rgb[along * np.sign(part.hw - part.hh + 1e-9) > 0.75] = _hsv(0, 0, 0.08)
    elif kind == "zipper":
        tape = _hsv(rng.random(), rng.uniform(0.2, 0.6), rng.uniform(0.12, 0.28))
        tooth = _hsv(0.13, 0.5, 0.95)
        teeth = (np.abs(across) < 0.55) & (np.sin(along * along_len * 7 * np.pi) > 0)
        rgb = np.where(teeth[:, None], tooth[None], tape[None])
    else:
        raise ValueError(f"unknown part type {kind!r}")
    return np.clip(rgb, 0, 1)


def _background(rng: Rng, width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    c0 = _hsv(rng.random(), rng.uniform(0.0, 0.5), rng.uniform(0.3, 0.95))
    c1 = _hsv(rng.random(), rng.uniform(0.0, 0.5), rng.uniform(0.3, 0.95))
    ang = rng.uniform(0, 2 * np.pi)
    t = (np.cos(ang) * xx + np.sin(ang) * yy + 1) / 2
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(rng.integers(3, 10)):  # clutter: plain blobs, boxes and sticks
        col = tuple(
            int(v * 255) for v in _hsv(rng.random(), rng.uniform(0, 0.6), rng.uniform(0.2, 0.95))
        )
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        w, h = rng.uniform(8, width * 0.3), rng.uniform(8, height * 0.3)
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse([x - w, y - h, x + w, y + h], fill=col)
        elif kind == 1:
            draw.rectangle([x - w, y - h, x + w, y + h], fill=col)
        else:
            draw.line(
                [x, y, x + rng.uniform(-1, 1) * w * 2, y + rng.uniform(-1, 1) * h * 2],
                fill=col,
                width=int(rng.integers(2, 6)),
            )
    img = np.asarray(pil).astype(np.float32) / 255
    return img + rng.normal(0, rng.uniform(0.005, 0.03), img.shape)


def render(category: Category, rng: Rng, width: int = 256, height: int = 256) -> Rendered:
    """Draw ``category`` with a random pose, scale, mirror, colours and background."""
    img = _background(rng, width, height)
    labels = np.full((height, width), -1, dtype=np.int16)
    short = min(width, height)
    scale = rng.uniform(0.33, 0.46) * short  # pixels per object unit
    theta = np.deg2rad(rng.uniform(-35, 35))
    flip = -1.0 if rng.random() < 0.5 else 1.0
    margin = scale * 1.0
    cx = rng.uniform(margin, width - margin) if width > 2 * margin else width / 2
    cy = rng.uniform(margin, height - margin) if height > 2 * margin else height / 2
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    obj_to_img = rot @ np.diag([flip * scale, scale])

    parts = []
    for base in category.parts:
        j = rng.uniform(0.88, 1.12, size=2) * _PART_BOOST.get(base.kind, 1.0)
        parts.append(
            Part(
                base.kind,
                base.shape,
                base.cx + rng.uniform(-0.04, 0.04),
                base.cy + rng.uniform(-0.04, 0.04),
                base.hw * j[0],
                base.hh * j[1],
                base.angle + rng.uniform(-6, 6),
            )
        )
    yy, xx = np.mgrid[0:height, 0:width]
    pix = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=0).astype(np.float64)
    out = img.reshape(-1, 3)
    for index, part in enumerate(parts):
        phi = np.deg2rad(part.angle)
        part_rot = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
        lin = obj_to_img @ part_rot @ np.diag([part.hw, part.hh])
        off = obj_to_img @ np.array([part.cx, part.cy]) + np.array([cx, cy])
        verts = [tuple(lin @ np.array(v) + off) for v in _UNIT_SHAPES[part.shape]]
        canvas = Image.new("L", (width, height), 0)
        ImageDraw.Draw(canvas).polygon(verts, fill=255)
        inside = np.asarray(canvas).ravel() > 0
        if not inside.any():
            continue
        local = np.linalg.solve(lin, pix[:, inside] - off[:, None])
        out[inside] = _texture(part.kind, local[0], local[1], part, rng)
        labels.ravel()[inside] = index
    out += rng.normal(0, 0.01, out.shape)
    image = (np.clip(out.reshape(height, width, 3), 0, 1) * 255 + 0.5).astype(np.uint8)
    return Rendered(image=image, labels=labels, parts=parts)
