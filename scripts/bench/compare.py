"""Side-by-side speed: seer against its PyTorch twin on one machine.

Alternates the two commands for several rounds with the same settings and
thread count, then prints each one's median over the rounds, the spread, and
the ratio seer / PyTorch.

    cargo build --release
    python scripts/bench/compare.py train --preset shakespeare-char-cpu --rounds 5
    python scripts/bench/compare.py generate --rounds 3      # GPT-2 small shape vs transformers
    python scripts/bench/compare.py generate --weights bf16  # both with bf16 weights
    python scripts/bench/compare.py image --rounds 3         # DiT training step and DDIM sampling
"""
import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Per mode: (metric name, pattern, unit, whether lower is better).
METRICS = {
    "train": [("training", re.compile(r"median ([0-9.]+) ms/iter"), "ms/iter", True)],
    "generate": [("generation", re.compile(r"generation: ([0-9.]+) tokens/s"), "tokens/s", False)],
    "image": [
        ("training", re.compile(r"training: median ([0-9.]+) ms/iter"), "ms/iter", True),
        ("sampling", re.compile(r"guidance in ([0-9.]+) s"), "s", True),
    ],
}


def run(cmd, metrics):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    values = []
    for _, pattern, _, _ in metrics:
        match = pattern.search(out.stdout)
        if not match:
            sys.exit(f"no '{pattern.pattern}' in the output of {' '.join(cmd)}:\n{out.stdout}")
        values.append(float(match.group(1)))
    return values, out.stdout


def commands(args):
    if args.what == "train":
        common = ["--preset", args.preset, "--iters", str(args.iters), "--warmup", str(args.warmup)]
        if args.batch_size:
            common += ["--batch-size", str(args.batch_size)]
        seer = [str(ROOT / "target/release/seer"), "bench", "train", *common]
        torch = [sys.executable, str(ROOT / "scripts/bench/train_torch.py"), *common, "--threads", "2"]
    elif args.what == "generate":
        common = ["--prompt-tokens", str(args.prompt_tokens), "--new-tokens", str(args.new_tokens)]
        seer = [str(ROOT / "target/release/seer"), "bench", "generate", *common, "--weights", args.weights]
        dtype = {"f32": "float32", "bf16": "bfloat16"}[args.weights]
        torch = [sys.executable, str(ROOT / "scripts/bench/generate_torch.py"), *common, "--threads", "2",
                 "--dtype", dtype]
    else:
        common = ["--iters", str(args.iters), "--warmup", str(args.warmup)]
        seer = [str(ROOT / "target/release/seer"), "bench", "image", *common]
        torch = [sys.executable, str(ROOT / "scripts/bench/image_torch.py"), *common, "--threads", "2"]
    return seer, torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["train", "generate", "image"])
    ap.add_argument("--preset", default="shakespeare-char-cpu")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--weights", choices=["f32", "bf16"], default="f32",
                    help="generate: weight matrices of both models")
    args = ap.parse_args()
    seer_cmd, torch_cmd = commands(args)
    metrics = METRICS[args.what]
    seer, torch = [], []
    for r in range(args.rounds):
        s, s_out = run(seer_cmd, metrics)
        t, t_out = run(torch_cmd, metrics)
        seer.append(s)
        torch.append(t)
        if r == 0:
            print(s_out.strip(), t_out.strip(), sep="\n")
        cells = ", ".join(f"{name}: seer {a:.2f} {unit}, pytorch {b:.2f} {unit}"
                          for (name, _, unit, _), a, b in zip(metrics, s, t))
        print(f"round {r + 1}: {cells}", flush=True)
    for i, (name, _, unit, lower_is_better) in enumerate(metrics):
        ours, theirs = [v[i] for v in seer], [v[i] for v in torch]
        s, t = statistics.median(ours), statistics.median(theirs)
        print(f"{name}: seer    median {s:.2f} {unit} (spread {min(ours):.2f}-{max(ours):.2f}) over {args.rounds} rounds")
        print(f"{name}: pytorch median {t:.2f} {unit} (spread {min(theirs):.2f}-{max(theirs):.2f}) over {args.rounds} rounds")
        speedup = t / s if lower_is_better else s / t
        verdict = f"seer {speedup:.2f}x faster" if speedup > 1 else f"seer slower: {1 / speedup:.2f}x"
        print(f"{name}: ratio seer/pytorch {s / t:.3f} ({verdict})")

if __name__ == "__main__":
    main()
