"""`avag export`: a checkpoint (or a preset with random weights) -> ONNX, verified with
onnxruntime. ``--split`` writes the two graphs the onnxruntime/TensorRT backends run
(visual encoder; audio-conditioned decoder)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from avag_core.config import add_config_args

    p = sub.add_parser(
        "export",
        help="export the model to ONNX (dynamic batch and audio length) and check it against PyTorch",
    )
    p.add_argument(
        "--checkpoint",
        help="model checkpoint (.safetensors); without it, --config "
        "builds a randomly initialised model (for testing the pipeline)",
    )
    add_config_args(p)
    p.add_argument("--out", required=True,
                   help="output .onnx file, or with --split a folder for encoder.onnx + decoder.onnx")
    p.add_argument("--split", action="store_true",
                   help="two graphs matching set_image/predict: encoder (image -> maps) and decoder "
                   "(maps + audio -> logits)")
    p.add_argument("--tolerance", type=float, default=1e-3, help="max abs logit difference allowed")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avag_core.config import load_config
    from avag_core.errors import AvagError
    from avag_core.export import check_onnx, check_split, export_onnx, export_split
    from avag_core.modeling import build_model
    from avag_core.weights.checkpoint import load_model_checkpoint

    if args.checkpoint:
        model, cfg = load_model_checkpoint(args.checkpoint)
    else:
        cfg = load_config(args.config, args.overrides)
        model = build_model(cfg.model)
    size = cfg.model.image_size
    if args.split:
        enc, dec = export_split(model, size, args.out)
        print(f"wrote {enc} (image [B,3,{size},{size}] -> feat0..) and {dec} "
              "(feat0.., audio [B,T,96,64], audio_mask [B,T] -> function, dependency)")
    else:
        path = export_onnx(model, size, args.out)
        print(f"wrote {path} (inputs: image [B,3,{size},{size}], audio [B,T,96,64], audio_mask [B,T])")
    if not args.no_check:
        diff = check_split(model, args.out, size) if args.split else check_onnx(model, args.out, size)
        print(f"onnxruntime vs PyTorch, T in (1, 5, 20), B in (1, 2): max abs logit diff {diff:.2e}")
        if diff > args.tolerance:
            raise AvagError(
                f"ONNX export {args.out} differs from PyTorch by {diff:.2e} (> {args.tolerance:g})"
            )
    return 0
