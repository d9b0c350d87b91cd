"""Grasp-region geometry: back-projection, invalid depth, resizing, PCA pose, voxels."""

import numpy as np
import pytest

from avag_core.geometry import (
    depth_to_metres,
    image_centroid,
    principal_axes,
    region_geometry,
    rotation_to_quaternion,
    scale_intrinsics,
    voxel_downsample,
)

H, W = 48, 64
K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])


def quat_to_rot(q):
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def test_backprojection_of_a_known_pixel_with_mm_and_m_depth():
    mask = np.zeros((H, W), bool)
    mask[10, 40] = True
    image = np.zeros((H, W, 3), np.uint8)
    image[10, 40] = (10, 20, 30)
    prob = np.full((H, W), 0.25, np.float32)
    for depth in (np.full((H, W), 2000, np.uint16), np.full((H, W), 2.0, np.float32)):
        g = region_geometry(prob, mask, depth, K, image)
        np.testing.assert_allclose(g.points, [[(40 - 31.5) * 2 / 50, (10 - 23.5) * 2 / 50, 2.0]], rtol=1e-6)
        np.testing.assert_array_equal(g.colors, [[10, 20, 30]])
        np.testing.assert_allclose(g.probability, [0.25])
        assert g.pose is None  # one point
        assert g.centroid_uv == (40.0, 10.0)


def test_invalid_depth_never_becomes_a_point():
    depth = np.full((H, W), 1.5, np.float32)
    depth[0, :4] = [0.0, np.nan, np.inf, -1.0]
    mask = np.zeros((H, W), bool)
    mask[0, :6] = True
    g = region_geometry(np.ones((H, W)), mask, depth, K)
    assert g.points.shape == (2, 3) and np.isfinite(g.points).all()
    d16 = np.full((H, W), 1500, np.uint16)
    d16[0, :5] = 0
    assert region_geometry(np.ones((H, W)), mask, d16, K).points.shape == (1, 3)
    z = depth_to_metres(depth)
    assert np.isnan(z[0, :4]).all() and z[0, 4] == 1.5
    assert region_geometry(np.ones((H, W)), mask, depth, K, max_depth=1.0).points.shape == (0, 3)


def test_empty_mask_and_missing_depth():
    empty = region_geometry(np.zeros((H, W)), np.zeros((H, W), bool), np.ones((H, W), np.float32), K)
    assert empty.points.shape == (0, 3) and empty.pose is None and empty.centroid_uv == (-1.0, -1.0)
    mask = np.zeros((H, W), bool)
    mask[5:10, 5:15] = True
    no_depth = region_geometry(np.ones((H, W)), mask, None, None)
    assert no_depth.points.shape == (0, 3) and no_depth.centroid_uv == (9.5, 7.0)


def test_plane_pose_extents_and_handedness():
    # a tilted plane z = 1 + 0.5 x, mask elongated along u -> major axis along camera x
    u, _ = np.meshgrid(np.arange(W), np.arange(H))
    x_over_z = (u - K[0, 2]) / K[0, 0]
    depth = (1.0 / (1.0 - 0.5 * x_over_z)).astype(np.float32)  # solves z = 1 + 0.5 x
    mask = np.zeros((H, W), bool)
    mask[20:28, 4:60] = True
    g = region_geometry(np.ones((H, W)), mask, depth, K)
    pose = g.pose
    R = pose.rotation
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-9)
    assert np.linalg.det(R) == pytest.approx(1.0)
    normal = np.array([-0.5, 0.0, 1.0]) / np.linalg.norm([-0.5, 0.0, 1.0])
    assert abs(abs(R[:, 2] @ normal) - 1.0) < 1e-6
    assert R[:, 2] @ pose.centroid < 0  # normal faces the camera
    assert R[0, 0] > 0.8  # major axis along image right
    np.testing.assert_allclose(quat_to_rot(pose.quaternion), R, atol=1e-9)
    np.testing.assert_allclose(pose.centroid, g.points.astype(np.float64).mean(axis=0), atol=1e-6)
    assert pose.extents[0] > pose.extents[1] > pose.extents[2] >= 0 and pose.extents[2] < 1e-3
    along_x = (g.points - pose.centroid) @ R[:, 0]
    assert pose.extents[0] == pytest.approx(along_x.std(), rel=1e-4)


def test_principal_axes_of_a_random_rotated_box():
    rng = np.random.default_rng(0)
    local = rng.uniform(-1, 1, (5000, 3)) * [0.3, 0.1, 0.01]
    a, b = np.deg2rad(30), np.deg2rad(-20)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ np.array(
        [[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    pts = local @ rot.T + [0.1, -0.2, 1.5]
    pose = principal_axes(pts)
    for k in range(3):
        assert abs(abs(pose.rotation[:, k] @ rot[:, k]) - 1) < 1e-3
    np.testing.assert_allclose(pose.extents, [0.3, 0.1, 0.01] / np.sqrt(3), rtol=0.05)
    assert principal_axes(pts[:2]) is None


def test_quaternion_covers_all_branches():
    rng = np.random.default_rng(1)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        got = rotation_to_quaternion(quat_to_rot(q))
        np.testing.assert_allclose(got, q if q[3] >= 0 else -q, atol=1e-9)
    np.testing.assert_allclose(rotation_to_quaternion(np.diag([1.0, -1.0, -1.0])), [1, 0, 0, 0], atol=1e-12)


def test_depth_resolution_mismatch_resize_or_error():
    mask = np.zeros((H, W), bool)
    mask[:, W // 2:] = True  # right half
    depth = np.full((H // 2, W // 2), 1000, np.uint16)
    depth[:, : W // 4] = 3000  # left half far, right half near
    g = region_geometry(np.ones((H, W)), mask, depth, K)
    assert g.points.shape[0] == mask.sum() and np.allclose(g.points[:, 2], 1.0)
    with pytest.raises(ValueError, match="differs"):
        region_geometry(np.ones((H, W)), mask, depth, K, depth_mismatch="error")
    with pytest.raises(ValueError, match="same"):
        region_geometry(np.ones((H, W + 1)), mask, depth, K)


def test_voxel_downsampling_averages():
    pts = np.array([[0.001, 0.001, 1.0], [0.004, 0.002, 1.002], [0.5, 0.5, 1.0]], np.float32)
    cols = np.array([[0, 0, 0], [100, 200, 50], [9, 9, 9]], np.uint8)
    prob = np.array([0.2, 0.4, 1.0], np.float32)
    p, c, pr = voxel_downsample(pts, cols, prob, voxel_size=0.01)
    order = np.argsort(p[:, 0])
    np.testing.assert_allclose(p[order][0], [0.0025, 0.0015, 1.001], atol=1e-6)
    np.testing.assert_array_equal(c[order], [[50, 100, 25], [9, 9, 9]])
    np.testing.assert_allclose(pr[order], [0.3, 1.0])
    mask = np.ones((H, W), bool)
    g = region_geometry(np.ones((H, W)), mask, np.ones((H, W), np.float32), K, voxel_size=0.05)
    assert 0 < g.points.shape[0] < H * W and np.isfinite(g.points).all()


def test_scale_intrinsics_and_weighted_centroid():
    K2 = scale_intrinsics(K, (W, H), (2 * W, 2 * H))
    assert K2[0, 0] == 100 and K2[0, 2] == pytest.approx(63.5) and K2[1, 2] == pytest.approx(47.5)
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = mask[1, 3] = True
    w = np.zeros((4, 4))
    w[1, 1], w[1, 3] = 1.0, 3.0
    assert image_centroid(mask, w) == (2.5, 1.0)
