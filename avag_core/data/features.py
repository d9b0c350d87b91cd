"""Tensor-only loading of pre-computed audio features (``pkl`` column of AVAGD CSVs).

Unpickling an arbitrary file runs code chosen by whoever wrote it, so these files are
only read through unpicklers that can build tensors and nothing else.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

from avag_core.errors import AvagError


def _safe_storage_from_bytes(data: bytes) -> Any:
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


class _TensorOnlyUnpickler(pickle.Unpickler):
    """For tensors written with plain ``pickle.dump``: allows only tensor rebuilding."""

    def find_class(self, module: str, name: str) -> Any:
        import collections

        import torch

        allowed = {
            ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
            ("torch.storage", "_load_from_bytes"): _safe_storage_from_bytes,
            ("collections", "OrderedDict"): collections.OrderedDict,
        }
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def load_feature_pickle(path: str | Path):
    """Load a ``[T,1,96,64]`` or ``[T,96,64]`` log-mel tensor; return it as ``[T,96,64]``.

    Anything but a tensor of that shape (including a pickle that would run code) is
    refused with an AvagError naming the file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise AvagError(f"feature file {path} does not exist")
    try:
        if zipfile.is_zipfile(path):
            obj = torch.load(path, map_location="cpu", weights_only=True)
        else:
            with path.open("rb") as fh:
                obj = _TensorOnlyUnpickler(fh).load()
    except Exception as exc:  # any unpickling failure means: not a plain tensor file
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise AvagError(f"refused feature file {path}: not a plain tensor ({reason})") from None
    if not isinstance(obj, torch.Tensor):
        raise AvagError(f"refused feature file {path}: holds {type(obj).__name__}, not a tensor")
    if obj.dim() == 4 and obj.shape[1] == 1:
        obj = obj[:, 0]
    if obj.dim() != 3 or tuple(obj.shape[1:]) != (96, 64) or obj.shape[0] == 0:
        raise AvagError(
            f"feature file {path} has shape {list(obj.shape)}, expected [T,1,96,64] or [T,96,64]"
        )
    if not obj.is_floating_point():
        raise AvagError(f"feature file {path} holds {obj.dtype} values, expected floats")
    return obj.to(torch.float32).contiguous()
