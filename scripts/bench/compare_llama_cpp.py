"""Side by side: seer and llama.cpp on the same GGUF file, same thread count,
alternated round by round, as llama-bench measures (pp: one batch of N
prompt tokens; tg: N tokens generated one at a time), with peak memory.

  python3 scripts/bench/compare_llama_cpp.py MODEL.gguf [--llama-bench PATH]
      [--seer target/release/seer] [--threads 2] [--rounds 5] [--pp 128] [--tg 256]

llama-bench comes from scripts/bench/build_llama_cpp.sh (its native/ or avx2/
build). Prints each round's tokens/s, then the medians with their spread and
the ratio seer/llama.cpp (above 1: seer is faster). Only the Python standard
library is needed.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys


def llama_bench(args):
    cmd = [args.llama_bench, "-m", args.model, "-t", str(args.threads), "-p", str(args.pp),
           "-n", str(args.tg), "-r", "1", "-o", "json"]
    out = run_timed(cmd, {})
    results = json.loads(out["stdout"])
    pp = next(r["avg_ts"] for r in results if r["n_prompt"] > 0)
    tg = next(r["avg_ts"] for r in results if r["n_gen"] > 0)
    return pp, tg, out["rss_mib"]


def seer_bench(args):
    cmd = [args.seer, "bench", "generate", "--model", args.model, "--prompt-tokens", str(args.pp),
           "--new-tokens", str(args.tg), "--repetitions", "1"]
    out = run_timed(cmd, {"RAYON_NUM_THREADS": str(args.threads)})
    pp = float(re.search(r"^pp\d+: ([\d.]+)", out["stdout"], re.M).group(1))
    tg = float(re.search(r"^tg\d+: ([\d.]+)", out["stdout"], re.M).group(1))
    return pp, tg, out["rss_mib"]


def run_timed(cmd, env):
    """Runs cmd under /usr/bin/time -v; returns its stdout and peak RSS in MiB."""
    full = ["/usr/bin/time", "-v"] + cmd
    proc = subprocess.run(full, capture_output=True, text=True, env={**os.environ, **env})
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return {"stdout": proc.stdout, "rss_mib": int(rss.group(1)) / 1024 if rss else float("nan")}


def summary(values):
    return f"{statistics.median(values):8.1f} ({min(values):.1f}-{max(values):.1f})"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--llama-bench", default=os.path.expanduser("~/.cache/seer/llama.cpp/native/llama-bench"))
    p.add_argument("--seer", default="target/release/seer")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pp", type=int, default=128)
    p.add_argument("--tg", type=int, default=256)
    args = p.parse_args()
    runs = {"seer": [], "llama.cpp": []}
    for r in range(args.rounds):
        for name, bench in (("seer", seer_bench), ("llama.cpp", llama_bench)):
            pp, tg, rss = bench(args)
            runs[name].append((pp, tg, rss))
            print(f"round {r + 1} {name:9}: pp{args.pp} {pp:8.1f} tok/s  tg{args.tg} {tg:8.1f} tok/s  peak {rss:6.0f} MiB",
                  flush=True)
    print(f"\n{os.path.basename(args.model)}, {args.threads} threads, {args.rounds} rounds alternated; median (min-max)")
    print(f"{'':10} {'pp' + str(args.pp) + ' tok/s':>22} {'tg' + str(args.tg) + ' tok/s':>22} {'peak MiB':>10}")
    for name, rows in runs.items():
        pp, tg, rss = zip(*rows)
        print(f"{name:10} {summary(pp):>22} {summary(tg):>22} {statistics.median(rss):10.0f}")
    med = {n: [statistics.median(c) for c in zip(*rows)] for n, rows in runs.items()}
    print(f"{'seer/llama.cpp':10} {med['seer'][0] / med['llama.cpp'][0]:>22.3f} {med['seer'][1] / med['llama.cpp'][1]:>22.3f} "
          f"{med['seer'][2] / med['llama.cpp'][2]:>10.3f}")


if __name__ == "__main__":
    main()
