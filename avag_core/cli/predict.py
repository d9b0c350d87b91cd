"""`avag predict`: one image + one or more sounds -> function/dependency probability maps."""

from __future__ import annotations

import argparse
from pathlib import Path

from avag_core.backends import BACKENDS, DTYPES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict affordance masks for an image and sound(s)")
    p.add_argument("--checkpoint", required=True, help="model checkpoint (.safetensors)")
    p.add_argument("--image", required=True, help="RGB image file")
    p.add_argument(
        "--audio", required=True, nargs="+", help="audio file(s); the image is encoded once"
    )
    p.add_argument("--out-dir", default="predictions", help="where PNGs are written")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="inference backend (default torch; cudagraph: torch on CUDA replayed from "
                   "CUDA graphs; inductor: compiled once for this CPU, cached; onnxruntime, tensorrt)")
    p.add_argument("--dtype", choices=DTYPES, default="fp32",
                   help="fp32; fp16 (CUDA); bf16; int8 (onnxruntime CPU); auto (torch: fastest that agrees)")
    p.add_argument("--threshold", type=float, default=0.5)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np
    from PIL import Image

    from avag_core.data.audio_io import load_audio
    from avag_core.predictor import Predictor
    from avag_core.preprocess import load_image, read_image_size

    predictor = Predictor.from_checkpoint(
        args.checkpoint, device=args.device, dtype=args.dtype, backend=args.backend
    )
    # Decoded exactly as training and `avag eval` decode it (same input pixels); a large
    # JPEG decodes at reduced size, so maps and overlays are brought back to its full size.
    rgb = load_image(Path(args.image), min_side=predictor.size)
    full_hw = read_image_size(Path(args.image))
    photo = rgb if rgb.shape[:2] == full_hw else load_image(Path(args.image))
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    predictor.set_image(rgb)
    print(
        f"image {args.image} {rgb.shape[1]}x{rgb.shape[0]} encoded in {(time.perf_counter() - t0) * 1e3:.0f} ms"
    )
    for audio_path in args.audio:
        wave, rate = load_audio(audio_path)
        t0 = time.perf_counter()
        pred = predictor.predict(wave, rate)
        ms = (time.perf_counter() - t0) * 1e3
        stem = f"{Path(args.image).stem}__{Path(audio_path).stem}"
        maps = {"function": _resized(pred.function_prob, full_hw),
                "dependency": _resized(pred.dependency_prob, full_hw)}  # fmt: skip
        for name, prob in maps.items():
            Image.fromarray((prob * 255).round().astype(np.uint8)).save(
                out_dir / f"{stem}_{name}_prob.png"
            )
            mask = prob > args.threshold
            overlay = photo.copy()
            colour = np.array(
                [255, 0, 0] if name == "function" else [0, 128, 255], dtype=np.float32
            )
            overlay[mask] = (0.5 * overlay[mask] + 0.5 * colour).astype(np.uint8)
            Image.fromarray(overlay).save(out_dir / f"{stem}_{name}_overlay.png")
        print(
            f"{audio_path}: {ms:.0f} ms; function {(maps['function'] > args.threshold).mean():.1%} "
            f"of pixels, dependency {(maps['dependency'] > args.threshold).mean():.1%} -> {out_dir}/{stem}_*.png"
        )
    return 0


def _resized(prob, hw: tuple[int, int]):
    """A probability map at ``hw`` (bilinear, as Predictor sizes its output)."""
    import torch
    import torch.nn.functional as F

    if prob.shape == hw:
        return prob
    t = torch.from_numpy(prob)[None, None]
    return F.interpolate(t, size=hw, mode="bilinear", align_corners=False)[0, 0].numpy()
