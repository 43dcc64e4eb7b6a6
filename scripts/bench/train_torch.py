"""The PyTorch twin of seer's training step, for side-by-side timing.

The same GPT-2 architecture as seer (and nanoGPT's model.py): learned position
embeddings, pre-LayerNorm blocks, causal attention, GELU (tanh), tied output
layer, biases; AdamW with decay on matrices only, gradient clipping at 1.0.
CPU, eager mode, float32, random tokens. Prints the same summary line as
`seer bench train`: "median X ms/iter ...".

    python scripts/bench/train_torch.py --preset shakespeare-char-cpu --iters 20
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    "shakespeare-char-cpu": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, dropout=0.0),
    "shakespeare-char": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2),
    "gpt2-small": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, batch_size=12, dropout=0.0),
}


class Block(nn.Module):
    def __init__(self, c, n_head, dropout):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
        self.c_attn, self.attn_proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.drop = nn.Dropout(dropout)

    def attn(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        return self.drop(self.attn_proj(y.transpose(1, 2).contiguous().view(b, t, c)))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.drop(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")))


class GPT(nn.Module):
    def __init__(self, vocab, n_layer, n_head, n_embd, block_size, dropout):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, n_embd), nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.h = nn.ModuleList(Block(n_embd, n_head, dropout) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, targets):
        t = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(t)))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="shakespeare-char-cpu")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--vocab-size", type=int, default=65)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1337)
    cfg = dict(PRESETS[args.preset])
    if args.batch_size:
        cfg["batch_size"] = args.batch_size
    b, t = cfg.pop("batch_size"), cfg["block_size"]
    model = GPT(args.vocab_size, **cfg)
    model.train()
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99))
    times = []
    for step in range(args.warmup + args.iters):
        data = torch.randint(0, args.vocab_size, (b, t + 1))
        x, y = data[:, :t], data[:, 1:]
        t0 = time.perf_counter()
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step >= args.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    median = times[len(times) // 2]
    print(f"pytorch {torch.__version__}, {torch.get_num_threads()} threads, preset {args.preset}, batch {b}")
    print(f"median {median:.2f} ms/iter over {args.iters} steps (min {times[0]:.2f}, max {times[-1]:.2f})")
    print(f"{b * t / (median / 1e3):.0f} tokens/s")


if __name__ == "__main__":
    main()
