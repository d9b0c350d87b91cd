"""Grasp-region geometry: mask + depth + intrinsics -> 3D points, centroid, principal axes.

Conventions (ROS REP 103/105 camera optical frame): x right, y down, z forward, metres.
Pixel (u, v) = (column, row) with the pinhole model x = (u - cx) z / fx, y = (v - cy) z / fy.

Depth: uint16 is millimetres (ROS 16UC1), float is metres (32FC1); 0, NaN, Inf and
negative values are invalid and never become points. Depth must be registered to the
image (e.g. RealSense aligned_depth_to_color); when its resolution differs it is resized
to the image resolution with nearest-neighbour (same field of view assumed), or refused
with ``depth_mismatch="error"``. ``K`` must belong to the image resolution; use
``scale_intrinsics`` when camera_info reports another size.

Lens distortion is ignored: use rectified images (``image_rect``) or accept an error that
grows towards the image borders (small for typical RGB-D cameras near the centre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RegionPose:
    """Centroid and principal axes of a point set.

    rotation: columns are the x (major), y, z (least-variance, i.e. surface normal
    estimate, pointing towards the camera) axes; right-handed. quaternion: (x, y, z, w).
    extents: standard deviation of the points along x, y, z in metres.
    """

    centroid: np.ndarray
    rotation: np.ndarray
    quaternion: np.ndarray
    extents: np.ndarray


@dataclass
class RegionGeometry:
    """Everything the node publishes about the function region."""

    points: np.ndarray  # [N, 3] float32 xyz in the camera optical frame (no NaN)
    colors: np.ndarray  # [N, 3] uint8 rgb
    probability: np.ndarray  # [N] float32
    pose: RegionPose | None  # None with fewer than 3 valid points
    centroid_uv: tuple[float, float]  # image-space centroid of the mask, (-1, -1) if empty


def scale_intrinsics(K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """K for another resolution of the same camera; sizes are (width, height)."""
    K = np.asarray(K, dtype=np.float64).reshape(3, 3).copy()
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    K[0, 0] *= sx
    K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5  # pixel centres, not corners, scale
    K[1, 1] *= sy
    K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return K


def depth_to_metres(depth: np.ndarray) -> np.ndarray:
    """float32 metres with NaN for every invalid reading (0, NaN, Inf, negative)."""
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2:
        raise ValueError(f"depth must be a [H, W] image, got shape {depth.shape}")
    if depth.dtype == np.uint16:
        z = depth.astype(np.float32) * np.float32(0.001)
    elif np.issubdtype(depth.dtype, np.floating):
        z = depth.astype(np.float32, copy=True)
    else:
        raise ValueError(f"depth must be uint16 millimetres or float metres, got {depth.dtype}")
    z[~(np.isfinite(z) & (z > 0))] = np.nan
    return z


def match_depth(depth: np.ndarray, shape: tuple[int, int], mode: str = "resize") -> np.ndarray:
    """Depth at image resolution ``shape`` (H, W): nearest-neighbour resize or ValueError."""
    if depth.shape[:2] == tuple(shape):
        return depth
    if mode != "resize":
        raise ValueError(f"depth resolution {depth.shape[1]}x{depth.shape[0]} differs from "
                         f"image resolution {shape[1]}x{shape[0]}")
    h, w = shape
    rows = np.minimum(((np.arange(h) + 0.5) * depth.shape[0] / h).astype(np.intp), depth.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * depth.shape[1] / w).astype(np.intp), depth.shape[1] - 1)
    return depth[rows[:, None], cols[None, :]]


def image_centroid(mask: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """(u, v) mean of the mask pixels (weighted by ``weights`` if given); (-1, -1) if empty."""
    v, u = np.nonzero(np.asarray(mask, dtype=bool))
    if u.size == 0:
        return (-1.0, -1.0)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[v, u]
    if w is not None and w.sum() <= 0:
        w = None
    return (float(np.average(u, weights=w)), float(np.average(v, weights=w)))


def backproject(
    mask: np.ndarray, depth_m: np.ndarray, K: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xyz [N, 3] float32 of mask pixels with valid depth, and their rows/columns."""
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if fx <= 0 or fy <= 0:
        raise ValueError(f"intrinsics must have positive focal lengths, got fx={fx}, fy={fy}")
    valid = np.asarray(mask, dtype=bool) & np.isfinite(depth_m)
    v, u = np.nonzero(valid)
    z = depth_m[v, u].astype(np.float64)
    xyz = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=1).astype(np.float32)
    return xyz, v, u


def voxel_downsample(
    points: np.ndarray, *attrs: np.ndarray, voxel_size: float
) -> tuple[np.ndarray, ...]:
    """Average points (and per-point attributes) falling into the same cubic voxel."""
    if voxel_size <= 0:
        raise ValueError(f"voxel_size must be > 0, got {voxel_size}")
    if points.shape[0] == 0:
        return (points, *attrs)
    cells = np.floor(points.astype(np.float64) / voxel_size).astype(np.int64)
    cells -= cells.min(axis=0)
    dims = cells.max(axis=0) + 1
    key = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]  # one int per voxel
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    n = counts.size

    def mean(a: np.ndarray) -> np.ndarray:
        a2 = a.reshape(a.shape[0], -1).astype(np.float64)
        cols = [np.bincount(inverse, weights=a2[:, j], minlength=n) for j in range(a2.shape[1])]
        return (np.stack(cols, axis=1) / counts[:, None]).reshape((n, *a.shape[1:]))

    result = [mean(points).astype(np.float32)]
    for a in attrs:
        m = mean(a)
        result.append(np.clip(np.rint(m), 0, 255).astype(a.dtype) if a.dtype == np.uint8 else m.astype(a.dtype))
    return tuple(result)


def rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """(x, y, z, w) unit quaternion of a proper rotation matrix, w >= 0."""
    R = np.asarray(R, dtype=np.float64)
    t = np.trace(R)
    if t > 0:
        s = 2.0 * np.sqrt(t + 1.0)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, 0.25 * s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s, (R[1, 0] - R[0, 1]) / s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return q if q[3] >= 0 else -q


def principal_axes(points: np.ndarray, weights: np.ndarray | None = None) -> RegionPose | None:
    """PCA pose of ``points`` [N, 3]; None with fewer than 3 points.

    Axis signs are fixed so the result is deterministic: z (least variance) points
    towards the camera origin, x has a non-negative image-right component (ties: down),
    and y = z cross x makes the frame right-handed.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if p.shape[0] < 3:
        return None
    w = np.ones(p.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape[0] != p.shape[0] or not np.all(w >= 0) or w.sum() <= 0:
        w = np.ones(p.shape[0])
    w = w / w.sum()
    c = w @ p
    d = p - c
    cov = (d * w[:, None]).T @ d
    evals, evecs = np.linalg.eigh(cov)  # ascending
    x, z = evecs[:, 2], evecs[:, 0]
    if np.dot(z, c) > 0:  # normal towards the camera at the origin
        z = -z
    if x[0] < 0 or (abs(x[0]) < 1e-12 and x[1] < 0):
        x = -x
    y = np.cross(z, x)
    R = np.stack([x, y, z], axis=1)
    extents = np.sqrt(np.maximum(evals[::-1], 0.0))
    return RegionPose(c, R, rotation_to_quaternion(R), extents)


def region_geometry(
    probability: np.ndarray,
    mask: np.ndarray,
    depth: np.ndarray | None,
    K: np.ndarray | None,
    image: np.ndarray | None = None,
    voxel_size: float | None = None,
    depth_mismatch: str = "resize",
    min_depth: float = 0.0,
    max_depth: float = np.inf,
    weighted_pose: bool = False,
) -> RegionGeometry:
    """Points, pose and image centroid of ``mask`` ([H, W]) with its ``probability`` map.

    ``image`` (optional, [H, W, 3] uint8 rgb) colours the points (white without it).
    Without depth or K the result has no points and no pose but still the image centroid.
    Depth outside [min_depth, max_depth] metres is treated as invalid.
    """
    mask = np.asarray(mask).astype(bool, copy=False)
    prob = np.asarray(probability, dtype=np.float32)
    if mask.ndim != 2 or prob.shape != mask.shape:
        raise ValueError(f"probability {prob.shape} and mask {mask.shape} must be the same [H, W]")
    if image is not None and (image.shape[:2] != mask.shape or image.ndim != 3 or image.shape[2] != 3):
        raise ValueError(f"image {image.shape} must be [H, W, 3] with H, W = {mask.shape}")
    centroid_uv = image_centroid(mask)
    empty = RegionGeometry(
        np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), np.zeros(0, np.float32), None, centroid_uv
    )
    if depth is None or K is None or not mask.any():
        return empty
    z = match_depth(depth_to_metres(depth), mask.shape, depth_mismatch)
    if min_depth > 0 or np.isfinite(max_depth):
        z = np.where((z >= min_depth) & (z <= max_depth), z, np.float32(np.nan))
    xyz, v, u = backproject(mask, z, K)
    colors = image[v, u].astype(np.uint8) if image is not None else np.full((v.size, 3), 255, np.uint8)
    p = prob[v, u]
    if voxel_size:
        xyz, colors, p = voxel_downsample(xyz, colors, p, voxel_size=voxel_size)
    pose = principal_axes(xyz, p if weighted_pose else None)
    return RegionGeometry(xyz, colors, p.astype(np.float32), pose, centroid_uv)
