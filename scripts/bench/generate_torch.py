"""The transformers twin of `seer bench generate`: a randomly initialised
GPT2LMHeadModel of GPT-2 small's shape, greedy `generate` with the KV cache,
CPU, eager, float32 (or bfloat16 with --dtype bfloat16: the whole model in
bf16, as `torch_dtype=torch.bfloat16` loads it). Prints the same lines as seer: "prompt processing: X
tokens/s" and "generation: X tokens/s".

    python scripts/bench/generate_torch.py --prompt-tokens 128 --new-tokens 256
"""
import argparse
import resource
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--vocab-size", type=int, default=50257)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=args.vocab_size)).eval()
    model = model.to(getattr(torch, args.dtype))
    ids = torch.randint(0, args.vocab_size, (1, args.prompt_tokens))
    with torch.no_grad():
        model(ids)  # untimed warm-up
        t0 = time.perf_counter()
        model(ids)
        prompt_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            do_sample=False,
            use_cache=True,
            pad_token_id=0,
        )
        total_s = time.perf_counter() - t0
    assert out.shape[1] == args.prompt_tokens + args.new_tokens
    print(f"transformers, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dtype}")
    print(f"prompt processing: {args.prompt_tokens / prompt_s:.1f} tokens/s")
    # generate() processes the prompt too; the rest is one token per step.
    print(f"generation: {(args.new_tokens - 1) / (total_s - prompt_s):.2f} tokens/s")
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
