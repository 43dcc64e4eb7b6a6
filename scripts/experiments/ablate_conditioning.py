"""Copies an image model folder with one of the denoiser's two caption paths
cut, to measure with `seer eval image` what each path carries.

    python scripts/experiments/ablate_conditioning.py MODEL OUT pooled|cross

pooled: the pooled caption's input layer (`caption_in.weight`) zeroed, so
        adaLN sees only the timestep (and the layer's bias);
cross:  every block's cross-attention output projection zeroed, so no patch
        reads the caption's token states.

Needs torch and safetensors (the reference environment of scripts/reference).
"""

import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[3] not in ("pooled", "cross"):
        sys.exit(__doc__)
    model, out, path = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    weights = model / "denoiser" / "model.safetensors"
    if not weights.exists():
        sys.exit(f"{weights}: missing (not an image model folder with a denoiser)")
    if out.exists():
        sys.exit(f"{out}: already exists")
    shutil.copytree(model, out)
    tensors = load_file(out / "denoiser" / "model.safetensors")
    if path == "pooled":
        cut = ["caption_in.weight"]
    else:
        cut = [k for k in tensors if ".cross.c_proj." in k]
    for name in cut:
        tensors[name] = tensors[name] * 0
    save_file(tensors, out / "denoiser" / "model.safetensors", metadata={"format": "pt"})
    print(f"{out}: {len(cut)} tensors zeroed ({path})")


if __name__ == "__main__":
    main()
