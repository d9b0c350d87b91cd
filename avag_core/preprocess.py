"""The one image path from a file or a camera frame to the model's input tensor.

Training, ``avag eval``, ``avag predict``, the ``Predictor`` API and the ROS node all go
through these functions, so the same frame always becomes the same input pixels:

1. decode (files only): EXIF orientation applied; JPEGs larger than needed are decoded at
   a reduced scale (PIL ``draft``, 1/2, 1/4 or 1/8, never below the model's input size);
   files over :data:`MAX_IMAGE_PIXELS` are refused before any pixel is decoded;
2. :func:`to_rgb8`: any layout (grey, RGB, RGBA) and depth (uint8, 16-bit, float in
   [0, 1]) -> uint8 RGB; transparent pixels are composited over :data:`NEUTRAL_RGB`,
   the ImageNet mean colour, which the normalisation maps to 0 (no signal) -- black would
   read as a dark object and shrink or erase the masks;
3. :func:`resize_rgb`: antialiased bilinear resize to the square input size, on the CPU in
   uint8 (the reference trains with PIL's antialiased bilinear resize), so the result does
   not depend on the device that runs the model;
4. :func:`normalize`: ImageNet mean / std.

Every bad input fails with one :class:`~avag_core.errors.AvagError` line.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avag_core.errors import AvagError

# ImageNet mean in 8 bits: transparent pixels get this colour and normalise to zero.
NEUTRAL_RGB = (124, 116, 104)
# Largest image accepted (width x height of the file), the same figure as Pillow's own
# decompression-bomb limit (2 x 89.5 MP): above it a file is refused with one line.
MAX_IMAGE_PIXELS = 178_956_970

_FLOAT_MODES = ("F",)
_INT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def open_image(path: Path):
    """``Image.open`` with our size limit instead of Pillow's warning or traceback."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except FileNotFoundError:
        raise AvagError(f"image {path} does not exist") from None
    except Image.DecompressionBombError:
        raise AvagError(
            f"image {path} is larger than {MAX_IMAGE_PIXELS / 1e6:.0f} MP: refused"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise AvagError(f"cannot read image {path}: {_reason(exc)}") from None
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        im.close()
        raise AvagError(
            f"image {path} is {w}x{h} ({w * h / 1e6:.0f} MP), larger than the "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} MP limit: refused"
        )
    if w == 0 or h == 0:
        im.close()
        raise AvagError(f"image {path} is empty ({w}x{h})")
    return im


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _oriented_size(im) -> tuple[int, int]:
    """(height, width) after the EXIF orientation tag is applied (5-8 swap the axes)."""
    w, h = im.size
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block: Pillow ignores it when transposing too
        orientation = 1
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image file as displayed (EXIF orientation), header only."""
    path = Path(path)
    im = open_image(path)
    with im:
        return _oriented_size(im)


def _pil_to_array(im) -> np.ndarray:
    """A decoded PIL image -> an array :func:`to_rgb8` understands (keeps depth and alpha)."""
    if im.mode in _FLOAT_MODES:
        arr = np.asarray(im, dtype=np.float32)
        peak = float(np.nanmax(arr)) if arr.size else 0.0
        # Float images are [0, 1]; a float file holding 0-255 or 0-65535 data is rescaled.
        if peak > 255.0:
            arr = arr / 65535.0
        elif peak > 1.0:
            arr = arr / 255.0
        return arr
    if im.mode in _INT_MODES:
        arr = np.asarray(im)
        if im.mode == "I" and arr.size and int(arr.max()) <= 255:
            return arr.astype(np.uint8)  # 8-bit data stored as 32-bit integers
        return np.clip(arr, 0, 65535).astype(np.uint16)
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        im.mode in ("P", "L", "RGB") and "transparency" in im.info
    ):
        return np.asarray(im.convert("RGBA"))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


def load_image(path: str | Path, min_side: int = 0) -> np.ndarray:
    """Decode an image file to uint8 RGB ``[H, W, 3]``, upright (EXIF orientation applied).

    ``min_side`` > 0 lets JPEGs decode at a reduced scale that keeps both sides at least
    that long (a 48 MP photo for a 512 px model decodes at 1/8: a fraction of the time
    and memory). Pass the model's input size; 0 decodes at full resolution.
    """
    from PIL import ImageOps

    path = Path(path)
    im = open_image(path)
    try:
        with im:
            if min_side > 0 and im.format == "JPEG":
                # Pillow picks the largest 1/2^k scale keeping both sides >= min_side.
                im.draft("RGB", (int(min_side), int(min_side)))
            im.load()
            im = ImageOps.exif_transpose(im)
            arr = _pil_to_array(im)
    except AvagError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise AvagError(f"cannot decode image {path}: {_reason(exc)}") from None
    return to_rgb8(arr, str(path))


def to_rgb8(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Any frame -> contiguous uint8 ``[H, W, 3]``.

    Accepts ``[H, W]``, ``[H, W, 1]``, ``[H, W, 3]`` or ``[H, W, 4]`` (alpha composited
    over :data:`NEUTRAL_RGB`) in uint8, uint16 (full 16-bit range), other integers
    (0-255) or floats in [0, 1] (clipped); NaN or infinite values are refused.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise AvagError(f"{what}: expected an HxW, HxWx3 or HxWx4 image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        unit = arr.astype(np.float32) / 255.0 if arr.shape[2] == 4 else None
    elif arr.dtype == np.uint16:
        unit = arr.astype(np.float32) / 65535.0
    elif arr.dtype == np.bool_:
        unit = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.integer):
        unit = np.clip(arr, 0, 255).astype(np.float32) / 255.0
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise AvagError(f"{what}: image contains NaN or infinite values")
        unit = np.clip(arr.astype(np.float32), 0.0, 1.0)
    else:
        raise AvagError(f"{what}: unsupported image dtype {arr.dtype}")
    if unit is None:  # uint8 without alpha: nothing to compute
        out = arr
    else:
        if unit.shape[2] == 4:
            alpha = unit[:, :, 3:4]
            neutral = np.asarray(NEUTRAL_RGB, dtype=np.float32) / 255.0
            unit = unit[:, :, :3] * alpha + neutral * (1.0 - alpha)
        out = np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8)
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    if not out.flags.writeable or not out.flags.c_contiguous:  # e.g. a view of a PIL image
        out = np.array(out, order="C")
    return out


def resize_rgb(rgb: np.ndarray, size: int) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` -> uint8 ``[3, size, size]``: antialiased bilinear, on the CPU.

    uint8 in, uint8 out, always on the CPU: the same frame gives the same pixels whatever
    device runs the model, and training's augmentation works on the same uint8 image.
    """
    t = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)
    if tuple(t.shape[-2:]) == (size, size):
        return t[0].clone()
    out = F.interpolate(
        t.contiguous(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
    return out[0]


@functools.lru_cache(maxsize=8)
def _mean_std(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std as [3, 1, 1] on ``device``, built once per device (not per frame)."""
    from avag_core.modeling import IMAGE_MEAN, IMAGE_STD

    with torch.inference_mode(False):  # ordinary tensors, usable outside inference mode too
        mean = torch.tensor(IMAGE_MEAN, dtype=torch.float32, device=device).view(3, 1, 1)
        std = torch.tensor(IMAGE_STD, dtype=torch.float32, device=device).view(3, 1, 1)
    return mean, std


def normalize(image: torch.Tensor) -> torch.Tensor:
    """uint8 ``[..., 3, H, W]`` -> float32 normalised with the ImageNet mean and std."""
    mean, std = _mean_std(image.device)
    return (image.to(torch.float32) / 255.0 - mean) / std


def prepare_batch(
    images: list[np.ndarray], size: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Frames of any size and depth -> the model's normalised input ``[B, 3, size, size]``."""
    batch = torch.stack([resize_rgb(to_rgb8(im), size) for im in images])
    return normalize(batch.to(device, non_blocking=True))
