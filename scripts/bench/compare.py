"""Side-by-side speed: seer against its PyTorch twin on one machine.

Alternates the two commands for several rounds with the same settings and
thread count, then prints each one's median over the rounds, the spread, and
the ratio seer / PyTorch.

    cargo build --release
    python scripts/bench/compare.py train --preset shakespeare-char-cpu --rounds 5
    python scripts/bench/compare.py generate --rounds 3      # GPT-2 small shape vs transformers
"""
import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = {"train": re.compile(r"median ([0-9.]+) ms/iter"), "generate": re.compile(r"generation: ([0-9.]+) tokens/s")}
UNITS = {"train": "ms/iter", "generate": "tokens/s"}


def run(cmd, pattern):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    match = pattern.search(out.stdout)
    if not match:
        sys.exit(f"no '{pattern.pattern}' in the output of {' '.join(cmd)}:\n{out.stdout}")
    return float(match.group(1)), out.stdout


def commands(args):
    if args.what == "train":
        common = ["--preset", args.preset, "--iters", str(args.iters), "--warmup", str(args.warmup)]
        if args.batch_size:
            common += ["--batch-size", str(args.batch_size)]
        seer = [str(ROOT / "target/release/seer"), "bench", "train", *common]
        torch = [sys.executable, str(ROOT / "scripts/bench/train_torch.py"), *common, "--threads", "2"]
    else:
        common = ["--prompt-tokens", str(args.prompt_tokens), "--new-tokens", str(args.new_tokens)]
        seer = [str(ROOT / "target/release/seer"), "bench", "generate", *common]
        torch = [sys.executable, str(ROOT / "scripts/bench/generate_torch.py"), *common, "--threads", "2"]
    return seer, torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["train", "generate"])
    ap.add_argument("--preset", default="shakespeare-char-cpu")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=256)
    args = ap.parse_args()
    seer_cmd, torch_cmd = commands(args)
    pattern, unit = PATTERNS[args.what], UNITS[args.what]
    seer, torch = [], []
    for r in range(args.rounds):
        s, s_out = run(seer_cmd, pattern)
        t, t_out = run(torch_cmd, pattern)
        seer.append(s)
        torch.append(t)
        if r == 0:
            print(s_out.strip(), t_out.strip(), sep="\n")
        print(f"round {r + 1}: seer {s:.2f} {unit}, pytorch {t:.2f} {unit}", flush=True)
    s, t = statistics.median(seer), statistics.median(torch)
    print(f"seer    median {s:.2f} {unit} (spread {min(seer):.2f}-{max(seer):.2f}) over {args.rounds} rounds")
    print(f"pytorch median {t:.2f} {unit} (spread {min(torch):.2f}-{max(torch):.2f}) over {args.rounds} rounds")
    faster = s < t if args.what == "train" else s > t
    speedup = t / s if args.what == "train" else s / t
    print(f"ratio seer/pytorch {s / t:.3f} (seer {speedup:.2f}x {'faster' if faster else 'as fast'})" if faster
          else f"ratio seer/pytorch {s / t:.3f} (seer slower: {1 / speedup:.2f}x)")


if __name__ == "__main__":
    main()
