"""Weight files: pretrained backbones, the reference converter and our checkpoints."""
