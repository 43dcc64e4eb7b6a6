"""Side-by-side training speed: seer against its PyTorch twin on one machine.

Alternates `seer bench train` and `train_torch.py` for several rounds (same
preset, batch, thread count, warm-up and timed steps), then prints each one's
median ms/iteration over the rounds, the spread, and the ratio seer/PyTorch.

    cargo build --release
    python scripts/bench/compare_train.py --preset shakespeare-char-cpu --rounds 5
"""
import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEDIAN = re.compile(r"median ([0-9.]+) ms/iter")


def run(cmd):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    match = MEDIAN.search(out.stdout)
    if not match:
        sys.exit(f"no 'median ... ms/iter' in the output of {' '.join(cmd)}:\n{out.stdout}")
    return float(match.group(1)), out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="shakespeare-char-cpu")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    common = ["--preset", args.preset, "--iters", str(args.iters), "--warmup", str(args.warmup)]
    if args.batch_size:
        common += ["--batch-size", str(args.batch_size)]
    seer_cmd = [str(ROOT / "target/release/seer"), "bench", "train", *common]
    torch_cmd = [sys.executable, str(ROOT / "scripts/bench/train_torch.py"), *common, "--threads", "2"]
    seer_ms, torch_ms = [], []
    for r in range(args.rounds):
        s, s_out = run(seer_cmd)
        t, t_out = run(torch_cmd)
        seer_ms.append(s)
        torch_ms.append(t)
        if r == 0:
            print(s_out.strip(), t_out.strip(), sep="\n")
        print(f"round {r + 1}: seer {s:.2f} ms/iter, pytorch {t:.2f} ms/iter", flush=True)
    s, t = statistics.median(seer_ms), statistics.median(torch_ms)
    print(f"seer    median {s:.2f} ms/iter (spread {min(seer_ms):.2f}-{max(seer_ms):.2f}) over {args.rounds} rounds")
    print(f"pytorch median {t:.2f} ms/iter (spread {min(torch_ms):.2f}-{max(torch_ms):.2f}) over {args.rounds} rounds")
    print(f"ratio seer/pytorch {s / t:.3f} ({t / s:.2f}x {'faster' if s < t else 'slower'})")


if __name__ == "__main__":
    main()
