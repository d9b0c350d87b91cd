"""Backend choices the machine cannot run fail at load with one clear line."""

from __future__ import annotations

import pytest

from avag_core.backends.torch_backend import cpu_bf16_supported
from avag_core.errors import AvagError
from avag_core.predictor import Predictor


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return Predictor.from_checkpoint(tiny_checkpoint)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"backend": "tflite"}, "unknown backend 'tflite'"),
        ({"dtype": "fp8"}, "unknown dtype 'fp8'"),
        ({"dtype": "fp16"}, "fp16 autocast needs a CUDA device"),
        ({"dtype": "int8"}, "int8 is for the onnxruntime backend"),
        ({"backend": "onnxruntime", "dtype": "bf16"}, "bf16 is not offered by onnxruntime"),
        ({"backend": "onnxruntime", "dtype": "fp16"}, "fp16 with onnxruntime needs device cuda"),
        ({"backend": "tensorrt"}, "needs onnxruntime-gpu built with TensorRT"),
        ({"backend": "torch", "engine_cache_dir": "x"}, "backend torch takes no options"),
        ({"backend": "inductor", "dtype": "int8"}, "backend inductor runs fp32 or bf16, not int8"),
        ({"backend": "inductor", "engine_cache_dir": "x"}, r"backend inductor takes only cache_dir"),
    ],
)
def test_refused_with_one_line(tiny, kwargs, match):
    with pytest.raises(AvagError, match=match) as err:
        Predictor(tiny.model, tiny.cfg, "cpu", **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(cpu_bf16_supported(), reason="this CPU runs bf16 natively")
def test_bf16_refused_on_a_cpu_without_it(tiny):
    with pytest.raises(AvagError, match="AVX512-BF16 or AMX"):
        Predictor(tiny.model, tiny.cfg, "cpu", dtype="bf16")


def test_a_torch_that_cannot_probe_the_cpu_runs_fp32(tiny, monkeypatch):
    """torch 2.4 (JetPack 6.0) has no bf16 probe in torch.cpu: bf16 is refused with the usual
    reason, and auto runs fp32, instead of an AttributeError at load."""
    import torch

    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert cpu_bf16_supported() is False
    with pytest.raises(AvagError, match="AVX512-BF16 or AMX"):
        Predictor(tiny.model, tiny.cfg, "cpu", dtype="bf16")
    assert Predictor(tiny.model, tiny.cfg, "cpu", backend="torch", dtype="auto").backend.dtype == "fp32"


@pytest.mark.skipif(not cpu_bf16_supported(), reason="torch finds neither AVX512-BF16 nor AMX on this CPU")
def test_a_model_cast_for_bf16_is_not_reused_by_another_predictor(tiny_checkpoint):
    """bf16 casts the weights in place (once, at load): a second Predictor on that model
    would run fp32 inputs into bf16 weights, so it is refused with the reason."""
    bf16 = Predictor.from_checkpoint(tiny_checkpoint, dtype="bf16")
    with pytest.raises(AvagError, match=r"cast to torch\.bfloat16 by another Predictor") as err:
        Predictor(bf16.model, bf16.cfg, "cpu")
    assert "\n" not in str(err.value)


def test_inductor_refuses_a_gpu_before_compiling_anything(tiny, tmp_path):
    """It compiles for the CPU: on CUDA the reason comes at once (no GPU needed to check)."""
    import torch

    from avag_core.backends import make_backend

    with pytest.raises(AvagError, match="backend inductor compiles for the CPU, got device cuda") as err:
        make_backend("inductor", tiny.model, 96, torch.device("cuda"), "fp32", cache_dir=tmp_path)
    assert "\n" not in str(err.value) and not any(tmp_path.iterdir())
