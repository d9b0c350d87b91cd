"""ROS message <-> numpy conversions for the perception node (no rclpy node needed).

Why our own: cv_bridge is broken with numpy >= 2.3 and maps 16UC1 wrongly; sensor_msgs_py
is not installable here. Everything is zero-copy on receive where the layout allows
(np.frombuffer on the message's byte array) and one ``tobytes()`` on send (assigning a
numpy array to a message field is ~500x slower).

PointCloud2 layout (32-byte points, PCL PointXYZRGB compatible, little endian):
    offset  0 x float32 | 4 y float32 | 8 z float32 | 12 (padding)
    offset 16 rgb float32 holding the bits of uint32 0x00RRGGBB (PCL/rviz2 convention)
    offset 20 probability float32 (PCL ignores unknown fields; rviz2 can colour by it)
    offset 24..31 padding
"""

from __future__ import annotations

import sys

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from sensor_msgs.msg import CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header

from avag.msg import AudioFrame
from avag_core.geometry import RegionPose

# encoding -> (dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}

_NS = 1_000_000_000
_LITTLE = sys.byteorder == "little"


# ---------------------------------------------------------------- time
def stamp_to_ns(stamp: Time) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time (exact, no float rounding)."""
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """builtin_interfaces/Time from integer nanoseconds."""
    sec, nanosec = divmod(int(ns), _NS)
    return Time(sec=sec, nanosec=nanosec)


def make_header(stamp: Time | int, frame_id: str = "") -> Header:
    """Header from a Time or integer nanoseconds."""
    return Header(stamp=stamp if isinstance(stamp, Time) else ns_to_stamp(stamp), frame_id=frame_id)


# ---------------------------------------------------------------- images
def image_to_numpy(msg: Image, copy: bool = False) -> np.ndarray:
    """[H, W] (one channel) or [H, W, C] array in the message's encoding (no colour conversion).

    Honours ``step`` row padding and ``is_bigendian``. Without ``copy`` the result shares
    memory with ``msg.data`` when the byte order is native.
    """
    enc = msg.encoding
    if enc not in IMAGE_ENCODINGS:
        raise ValueError(f"unsupported image encoding {enc!r}; supported: {', '.join(IMAGE_ENCODINGS)}")
    dtype, channels = IMAGE_ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = w * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(f"image step {step} is smaller than width*channels*bytes = {row_bytes} ({enc})")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < step * h:
        raise ValueError(f"image data has {buf.size} bytes, expected step*height = {step * h} ({enc} {w}x{h})")
    big = bool(msg.is_bigendian)
    dt = dtype.newbyteorder(">" if big else "<") if dtype.itemsize > 1 else dtype
    if h == 0 or w == 0:
        arr = np.zeros((h, w, channels), dtype=dtype)
    else:
        arr = np.ndarray((h, w, channels), dtype=dt, buffer=buf, strides=(step, channels * dtype.itemsize, dtype.itemsize))
    if dt.byteorder not in ("=", "|") and (dt.byteorder == ">") == _LITTLE:
        arr = arr.astype(dtype)  # swap to native
    elif copy:
        arr = arr.copy()
    return arr[:, :, 0] if channels == 1 else arr


def numpy_to_image(arr: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """Image message from an array whose dtype/channels match ``encoding`` (data = tobytes())."""
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"unsupported image encoding {encoding!r}; supported: {', '.join(IMAGE_ENCODINGS)}")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    arr = np.asarray(arr)
    shape_ok = (arr.ndim == 2 and channels == 1) or (arr.ndim == 3 and arr.shape[2] == channels)
    if not shape_ok:
        raise ValueError(f"array of shape {arr.shape} does not fit {encoding!r} ({channels} channel(s))")
    if arr.dtype.kind != dtype.kind or arr.dtype.itemsize != dtype.itemsize:
        raise ValueError(f"array dtype {arr.dtype} does not fit {encoding!r} (needs {dtype})")
    arr = np.ascontiguousarray(arr, dtype=dtype.newbyteorder("="))
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0 if _LITTLE else 1
    msg.step = int(arr.shape[1] * channels * dtype.itemsize)
    msg.data = arr.tobytes()
    return msg


def image_to_rgb(msg: Image) -> np.ndarray:
    """uint8 [H, W, 3] RGB from rgb8/bgr8/rgba8/bgra8/mono8 images (what the model eats)."""
    arr = image_to_numpy(msg)
    enc = msg.encoding
    if enc in ("rgb8", "8UC3"):
        return np.ascontiguousarray(arr)
    code = {"bgr8": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_RGBA2RGB, "bgra8": cv2.COLOR_BGRA2RGB,
            "mono8": cv2.COLOR_GRAY2RGB, "8UC1": cv2.COLOR_GRAY2RGB}.get(enc)
    if code is not None:  # OpenCV is ~10x faster than numpy channel shuffles here
        return cv2.cvtColor(np.ascontiguousarray(arr), code)
    raise ValueError(f"image encoding {enc!r} is not a colour image")


def compressed_to_numpy(msg: CompressedImage, rgb: bool = True) -> np.ndarray:
    """Decode a jpeg/png CompressedImage (also image_transport compressedDepth 16UC1 png).

    Colour images come back RGB (``rgb=False``: OpenCV's BGR), grey ones [H, W],
    compressedDepth as uint16 millimetres [H, W].
    """
    data = np.frombuffer(msg.data, dtype=np.uint8)
    fmt = msg.format.lower()
    if "compresseddepth" in fmt:
        if "16uc1" not in fmt and "mono16" not in fmt:
            raise ValueError(f"compressedDepth format {msg.format!r}: only 16UC1 (png) is supported")
        data = data[12:]  # image_transport's depth header: format enum + 2 float32 quantisation
    if data.size == 0:
        raise ValueError(f"compressed image ({msg.format!r}) has no data")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"could not decode compressed image with format {msg.format!r}")
    if img.ndim == 3 and rgb:
        code = cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
        img = cv2.cvtColor(img, code)
    return img


# ---------------------------------------------------------------- audio
# format -> (little-endian dtype, full scale)
AUDIO_FORMATS: dict[str, tuple[str, float]] = {
    AudioFrame.FORMAT_F32: ("<f4", 1.0),
    AudioFrame.FORMAT_S16: ("<i2", 32767.0),
    AudioFrame.FORMAT_S32: ("<i4", 2147483647.0),
}


def audio_frame_to_numpy(msg: AudioFrame) -> tuple[np.ndarray, int]:
    """(float32 [channels, n] in [-1, 1] nominal, sample_rate) from an AudioFrame."""
    fmt = msg.sample_format
    if fmt not in AUDIO_FORMATS:
        raise ValueError(f"unsupported audio sample_format {fmt!r}; supported: {', '.join(AUDIO_FORMATS)}")
    channels, n, rate = int(msg.channels), int(msg.samples_per_channel), int(msg.sample_rate)
    if channels < 1 or rate < 1:
        raise ValueError(f"audio frame needs channels >= 1 and sample_rate >= 1, got {channels}, {rate}")
    dtype, scale = AUDIO_FORMATS[fmt]
    expected = n * channels * np.dtype(dtype).itemsize
    if len(msg.data) != expected:
        raise ValueError(f"audio frame data has {len(msg.data)} bytes, expected samples_per_channel*channels*"
                         f"bytes = {expected} ({n}x{channels} {fmt})")
    raw = np.frombuffer(msg.data, dtype=dtype)
    if fmt == AudioFrame.FORMAT_F32:
        x = raw.astype(np.float32)
    else:
        x = (raw.astype(np.float64) / scale).astype(np.float32)
    return np.ascontiguousarray(x.reshape(n, channels).T), rate


def numpy_to_audio_frame(
    samples: np.ndarray,
    sample_rate: int,
    sample_format: str = AudioFrame.FORMAT_F32,
    header: Header | None = None,
) -> AudioFrame:
    """AudioFrame from float [channels, n] (or mono [n]) audio; integer formats clip to [-1, 1]."""
    if sample_format not in AUDIO_FORMATS:
        raise ValueError(f"unsupported audio sample_format {sample_format!r}")
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"audio must be [n] or [channels, n], got shape {x.shape}")
    if int(sample_rate) < 1:
        raise ValueError(f"audio sample_rate must be >= 1, got {sample_rate}")
    dtype, scale = AUDIO_FORMATS[sample_format]
    inter = x.T.reshape(-1)  # frame-major interleaving
    if sample_format != AudioFrame.FORMAT_F32:
        inter = np.rint(np.clip(inter, -1.0, 1.0) * scale)
    msg = AudioFrame()
    if header is not None:
        msg.header = header
    msg.sample_rate = int(sample_rate)
    msg.channels = int(x.shape[0])
    msg.sample_format = sample_format
    msg.samples_per_channel = int(x.shape[1])
    msg.data = inter.astype(dtype).tobytes()
    return msg


# ---------------------------------------------------------------- point clouds
CLOUD_DTYPE = np.dtype({
    "names": ["x", "y", "z", "rgb", "probability"],
    "formats": ["<f4", "<f4", "<f4", "<u4", "<f4"],
    "offsets": [0, 4, 8, 16, 20],
    "itemsize": 32,
})


def _cloud_fields() -> list[PointField]:
    return [
        PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
        PointField(name="y", offset=4, datatype=PointField.FLOAT32, count=1),
        PointField(name="z", offset=8, datatype=PointField.FLOAT32, count=1),
        PointField(name="rgb", offset=16, datatype=PointField.FLOAT32, count=1),
        PointField(name="probability", offset=20, datatype=PointField.FLOAT32, count=1),
    ]


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """uint32 0x00RRGGBB from uint8 [N, 3] rgb."""
    c = np.asarray(colors, dtype=np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """uint8 [N, 3] rgb from uint32 (or float32 holding the bits) 0x00RRGGBB."""
    p = np.asarray(packed)
    p = p.view(np.uint32) if p.dtype == np.float32 else p.astype(np.uint32)
    return np.stack([(p >> 16) & 255, (p >> 8) & 255, p & 255], axis=1).astype(np.uint8)


def points_to_pointcloud2(
    points: np.ndarray,
    colors: np.ndarray | None = None,
    probability: np.ndarray | None = None,
    header: Header | None = None,
) -> PointCloud2:
    """Unorganised (height 1) dense cloud in the 32-byte layout described in the module doc."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    n = pts.shape[0]
    if not np.isfinite(pts).all():
        raise ValueError("point cloud points must be finite (drop invalid depth first)")
    cloud = np.zeros(n, dtype=CLOUD_DTYPE)
    cloud["x"], cloud["y"], cloud["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape != (n, 3):
            raise ValueError(f"colors must be [{n}, 3] uint8, got {colors.shape}")
        cloud["rgb"] = pack_rgb(colors)
    else:
        cloud["rgb"] = 0xFFFFFF
    if probability is not None:
        probability = np.asarray(probability, dtype=np.float32).reshape(-1)
        if probability.shape != (n,):
            raise ValueError(f"probability must have {n} values, got {probability.shape}")
        cloud["probability"] = probability
    msg = PointCloud2()
    if header is not None:
        msg.header = header
    msg.height, msg.width = 1, n
    msg.fields = _cloud_fields()
    msg.is_bigendian = False
    msg.point_step = CLOUD_DTYPE.itemsize
    msg.row_step = CLOUD_DTYPE.itemsize * n
    msg.is_dense = True
    msg.data = cloud.tobytes()
    return msg


_FIELD_DTYPES = {
    PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2", PointField.UINT16: "u2",
    PointField.INT32: "i4", PointField.UINT32: "u4", PointField.FLOAT32: "f4", PointField.FLOAT64: "f8",
}


def pointcloud2_to_numpy(msg: PointCloud2) -> np.ndarray:
    """Structured array [height * width] with one entry per PointField (any layout)."""
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for f in msg.fields:
        if f.datatype not in _FIELD_DTYPES:
            raise ValueError(f"point field {f.name!r} has unknown datatype {f.datatype}")
        base = order + _FIELD_DTYPES[f.datatype]
        names.append(f.name)
        formats.append(base if f.count <= 1 else (base, (f.count,)))
        offsets.append(f.offset)
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": msg.point_step})
    h, w = int(msg.height), int(msg.width)
    if msg.row_step < w * msg.point_step or len(msg.data) < h * msg.row_step:
        raise ValueError(f"point cloud data ({len(msg.data)} bytes) does not fit {h}x{w} points "
                         f"of {msg.point_step} bytes with row_step {msg.row_step}")
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    rows = [np.frombuffer(buf[r * msg.row_step:r * msg.row_step + w * msg.point_step], dtype=dtype)
            for r in range(h)]
    return np.concatenate(rows) if rows else np.zeros(0, dtype=dtype)


# ---------------------------------------------------------------- poses
def pose_to_msg(centroid: np.ndarray, quaternion: np.ndarray) -> Pose:
    """geometry_msgs/Pose from a position (x, y, z) and a quaternion (x, y, z, w)."""
    c = [float(v) for v in np.asarray(centroid).reshape(3)]
    q = [float(v) for v in np.asarray(quaternion).reshape(4)]
    return Pose(position=Point(x=c[0], y=c[1], z=c[2]), orientation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))


def vector3_to_msg(v: np.ndarray) -> Vector3:
    x, y, z = (float(a) for a in np.asarray(v).reshape(3))
    return Vector3(x=x, y=y, z=z)


def region_pose_to_msgs(pose: RegionPose) -> tuple[Pose, Vector3]:
    """(Pose, principal extents) from avag_core.geometry.RegionPose."""
    return pose_to_msg(pose.centroid, pose.quaternion), vector3_to_msg(pose.extents)
