"""ROS message conversions with the real message classes and rclpy serialisation."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("avag.msg")

import cv2
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.image import compressed_image_to_cvimage, message_to_cvimage
from sensor_msgs.msg import CompressedImage, PointField

from avag.msg import AudioFrame
from avag_core.geometry import principal_axes, region_geometry
from avag_ros.conversions import (
    audio_frame_to_numpy,
    compressed_to_numpy,
    image_to_numpy,
    image_to_rgb,
    make_header,
    ns_to_stamp,
    numpy_to_audio_frame,
    numpy_to_image,
    pointcloud2_to_numpy,
    points_to_pointcloud2,
    region_pose_to_msgs,
    stamp_to_ns,
    unpack_rgb,
)

pytestmark = pytest.mark.ros
JPG = next((Path(__file__).parent / "data" / "avagd" / "axe").glob("*/*.jpg"))


def roundtrip(msg):
    return deserialize_message(serialize_message(msg), type(msg))


def sample(encoding, rng, h=7, w=5):
    if encoding == "32FC1":
        return rng.normal(size=(h, w)).astype(np.float32)
    if encoding == "16UC1":
        return rng.integers(0, 65535, (h, w), dtype=np.uint16)
    c = {"mono8": 1, "rgba8": 4, "bgra8": 4}.get(encoding, 3)
    a = rng.integers(0, 255, (h, w, c), dtype=np.uint8)
    return a[:, :, 0] if c == 1 else a


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "16UC1", "32FC1", "rgba8", "bgra8"])
def test_image_roundtrip_and_agreement_with_rosbags_image(encoding):
    arr = sample(encoding, np.random.default_rng(0))
    msg = roundtrip(numpy_to_image(arr, encoding, make_header(1_700_000_000_500_000_000, "cam")))
    assert msg.header.frame_id == "cam" and stamp_to_ns(msg.header.stamp) == 1_700_000_000_500_000_000
    got = image_to_numpy(msg)
    assert got.dtype == arr.dtype
    np.testing.assert_array_equal(got, arr)
    if encoding in ("rgb8", "bgr8", "mono8", "16UC1", "32FC1"):
        np.testing.assert_array_equal(message_to_cvimage(msg), arr)


@pytest.mark.parametrize("encoding", ["rgb8", "16UC1", "32FC1"])
def test_row_padding_and_big_endian(encoding):
    arr = sample(encoding, np.random.default_rng(1))
    msg = numpy_to_image(arr, encoding)
    pad = 6
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    padded = np.concatenate([rows, np.full((msg.height, pad), 0xAB, np.uint8)], axis=1)
    msg.step += pad
    msg.data = padded.tobytes()
    np.testing.assert_array_equal(image_to_numpy(roundtrip(msg)), arr)
    if arr.dtype.itemsize > 1:
        big = numpy_to_image(arr, encoding)
        big.data = arr.astype(arr.dtype.newbyteorder(">")).tobytes()
        big.is_bigendian = 1
        got = image_to_numpy(big)
        assert got.dtype.isnative
        np.testing.assert_array_equal(got, arr)


def test_image_errors():
    msg = numpy_to_image(np.zeros((4, 4, 3), np.uint8), "rgb8")
    msg.encoding = "yuv422"
    with pytest.raises(ValueError, match="unsupported image encoding"):
        image_to_numpy(msg)
    msg.encoding = "rgb8"
    msg.data = bytes(10)
    with pytest.raises(ValueError, match="expected step"):
        image_to_numpy(msg)
    msg.step = 5
    with pytest.raises(ValueError, match="step 5"):
        image_to_numpy(msg)
    with pytest.raises(ValueError, match="dtype"):
        numpy_to_image(np.zeros((4, 4), np.float32), "16UC1")
    with pytest.raises(ValueError, match="shape"):
        numpy_to_image(np.zeros((4, 4), np.uint8), "rgb8")


def test_image_to_rgb_orders_channels():
    rgb = sample("rgb8", np.random.default_rng(2))
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(rgb[:, :, ::-1], "bgr8")), rgb)
    bgra = np.concatenate([rgb[:, :, ::-1], np.full((*rgb.shape[:2], 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(image_to_rgb(numpy_to_image(bgra, "bgra8")), rgb)
    grey = image_to_rgb(numpy_to_image(rgb[:, :, 0], "mono8"))
    assert grey.shape == rgb.shape and (grey[:, :, 2] == rgb[:, :, 0]).all()


def test_compressed_images_png_jpeg_and_depth():
    bgr = cv2.imread(str(JPG), cv2.IMREAD_COLOR)[:120, :160]
    rgb = bgr[:, :, ::-1]
    png = CompressedImage(format="png", data=cv2.imencode(".png", bgr)[1].tobytes())
    np.testing.assert_array_equal(compressed_to_numpy(roundtrip(png)), rgb)
    np.testing.assert_array_equal(compressed_to_numpy(png, rgb=False), compressed_image_to_cvimage(png))
    jpg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=cv2.imencode(".jpg", bgr)[1].tobytes())
    assert np.abs(compressed_to_numpy(jpg).astype(int) - rgb).mean() < 4
    depth = np.random.default_rng(3).integers(300, 5000, (30, 40), dtype=np.uint16)
    header = np.zeros(12, np.uint8).tobytes()
    cd = CompressedImage(format="16UC1; compressedDepth png", data=header + cv2.imencode(".png", depth)[1].tobytes())
    got = compressed_to_numpy(cd)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, depth)
    with pytest.raises(ValueError, match="could not decode"):
        compressed_to_numpy(CompressedImage(format="jpeg", data=b"not an image"))


@pytest.mark.parametrize("fmt,tol", [("F32LE", 0.0), ("S16LE", 1 / 32767), ("S32LE", 1e-6)])
def test_audio_frame_roundtrip(fmt, tol):
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (2, 512)).astype(np.float32)
    msg = roundtrip(numpy_to_audio_frame(x, 48000, fmt, make_header(123, "mic_link")))
    assert (msg.channels, msg.samples_per_channel, msg.sample_rate) == (2, 512, 48000)
    got, rate = audio_frame_to_numpy(msg)
    assert rate == 48000 and got.dtype == np.float32 and got.shape == (2, 512)
    np.testing.assert_allclose(got, x, atol=tol + 1e-7)


def test_audio_interleaving_scaling_and_errors():
    inter = np.array([32767, -32767, 0, 16384], dtype="<i2")  # L0 R0 L1 R1
    msg = AudioFrame(sample_rate=16000, channels=2, sample_format="S16LE", samples_per_channel=2,
                     data=inter.tobytes())
    got, _ = audio_frame_to_numpy(msg)
    np.testing.assert_allclose(got, [[1.0, 0.0], [-1.0, 16384 / 32767]], atol=1e-7)
    mono = numpy_to_audio_frame(np.array([0.5, 2.0, -3.0]), 16000, "S16LE")
    np.testing.assert_array_equal(np.frombuffer(mono.data, "<i2"), [16384, 32767, -32767])
    msg.samples_per_channel = 3
    with pytest.raises(ValueError, match="expected samples_per_channel"):
        audio_frame_to_numpy(msg)
    msg.sample_format = "U8"
    with pytest.raises(ValueError, match="unsupported audio"):
        audio_frame_to_numpy(msg)


def test_pointcloud_layout_roundtrip_and_pose():
    H, W = 24, 32
    K = np.array([[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1]])
    depth = np.full((H, W), 900, np.uint16)
    depth[3, 3] = 0
    mask = np.zeros((H, W), bool)
    mask[2:10, 2:20] = True
    image = np.random.default_rng(5).integers(0, 255, (H, W, 3), dtype=np.uint8)
    prob = np.random.default_rng(6).random((H, W)).astype(np.float32)
    g = region_geometry(prob, mask, depth, K, image)
    msg = roundtrip(points_to_pointcloud2(g.points, g.colors, g.probability, make_header(5, "cam")))
    assert msg.point_step == 32 and msg.width == g.points.shape[0] == mask.sum() - 1 and msg.is_dense
    layout = {f.name: (f.offset, f.datatype, f.count) for f in msg.fields}
    f32 = PointField.FLOAT32
    assert layout == {"x": (0, f32, 1), "y": (4, f32, 1), "z": (8, f32, 1), "rgb": (16, f32, 1),
                      "probability": (20, f32, 1)}
    cloud = pointcloud2_to_numpy(msg)
    np.testing.assert_array_equal(np.stack([cloud["x"], cloud["y"], cloud["z"]], 1), g.points)
    np.testing.assert_array_equal(unpack_rgb(cloud["rgb"]), g.colors)
    np.testing.assert_array_equal(cloud["probability"], g.probability)
    raw = np.frombuffer(bytes(msg.data), np.uint8).reshape(-1, 32)
    r, gg, b = g.colors[0]
    assert tuple(raw[0, 16:20]) == (b, gg, r, 0)  # little-endian 0x00RRGGBB, as PCL packs it
    empty = points_to_pointcloud2(np.zeros((0, 3)))
    assert empty.width == 0 and pointcloud2_to_numpy(roundtrip(empty)).size == 0
    with pytest.raises(ValueError, match="finite"):
        points_to_pointcloud2(np.array([[0.0, np.nan, 1.0]]))

    pose, extents = region_pose_to_msgs(principal_axes(g.points))
    assert pose.position.z == pytest.approx(0.9, abs=1e-6)
    q = [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]
    assert np.linalg.norm(q) == pytest.approx(1.0) and extents.x >= extents.y >= extents.z


def test_pointcloud_reader_handles_row_padding():
    pts = np.arange(12, dtype=np.float32).reshape(4, 3)
    msg = points_to_pointcloud2(pts)
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(2, 64)
    msg.height, msg.width, msg.row_step = 2, 2, 70
    msg.data = np.concatenate([rows, np.zeros((2, 6), np.uint8)], axis=1).tobytes()
    cloud = pointcloud2_to_numpy(msg)
    np.testing.assert_array_equal(cloud["z"], pts[:, 2])


def test_stamps():
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_763_776_800_123_456_789):
        t = ns_to_stamp(ns)
        assert 0 <= t.nanosec < 1_000_000_000 and stamp_to_ns(roundtrip(make_header(t)).stamp) == ns
