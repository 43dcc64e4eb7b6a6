"""The PyTorch twin of seer's text-to-image models, for side-by-side speed.

The same shapes as seer's `shapes` image preset: a caption encoder (2 blocks,
128 wide, frozen in stage 2) and a DiT over 4×4 patches of 32×32 pictures
(6 adaLN-Zero blocks, 128 wide, 4 heads, cross-attention to the caption's
token states), v-prediction on the cosine schedule. Times the stage-2
training step (random pictures and captions, batch 64, AdamW) and the
sampling of 4 pictures with 50 DDIM steps and classifier-free guidance
(diffusers' DDIMScheduler). Eager mode, CPU, `--threads` threads.

    python scripts/bench/image_torch.py --threads 2
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import DDIMScheduler

WIDTH, LAYERS, HEADS, PATCH, SIDE, CTX, VOCAB, TEXT_LAYERS = 128, 6, 4, 4, 32, 24, 320, 2


class Block(nn.Module):
    """Pre-LayerNorm encoder block (bidirectional, key padding mask)."""

    def __init__(self, d):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, mask):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln_1(x)).view(b, t, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class TextEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(VOCAB, WIDTH), nn.Embedding(CTX, WIDTH)
        self.blocks = nn.ModuleList(Block(WIDTH) for _ in range(TEXT_LAYERS))
        self.ln_f, self.projection = nn.LayerNorm(WIDTH), nn.Linear(WIDTH, WIDTH, bias=False)

    def forward(self, ids, lengths):
        b, t = ids.shape
        keep = torch.arange(t)[None, :] < lengths[:, None]
        mask = keep[:, None, None, :]
        x = self.wte(ids) + self.wpe(torch.arange(t))
        for block in self.blocks:
            x = block(x, mask)
        states = self.ln_f(x)
        pooled = self.projection(states[torch.arange(b), lengths - 1])
        return states, pooled, mask


def grid_embedding(side, d):
    quarter = d // 4
    freqs = 1.0 / 10000 ** (torch.arange(quarter) / quarter)
    pos = torch.arange(side).float()[:, None] * freqs[None]
    enc = torch.cat([pos.sin(), pos.cos()], 1)
    rows = enc[:, None, :].expand(side, side, 2 * quarter)
    cols = enc[None, :, :].expand(side, side, 2 * quarter)
    return torch.cat([rows, cols], -1).reshape(side * side, d)


def timestep_embedding(t, d=256):
    half = d // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], -1)


class DitBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.adaln = nn.Linear(d, 6 * d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ln_cross = nn.LayerNorm(d, eps=1e-6)
        self.q, self.kv, self.cproj = nn.Linear(d, d), nn.Linear(WIDTH, 2 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, c, context, mask):
        b, n, d = x.shape
        m = self.adaln(F.silu(c)).chunk(6, -1)
        norm = lambda h: F.layer_norm(h, (d,), eps=1e-6)
        h = norm(x) * (1 + m[1][:, None]) + m[0][:, None]
        q, k, v = self.qkv(h).view(b, n, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + m[2][:, None] * self.proj(y)
        h = self.ln_cross(x)
        l = context.shape[1]
        q = self.q(h).view(b, n, HEADS, d // HEADS).transpose(1, 2)
        k, v = self.kv(context).view(b, l, 2, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, n, d)
        x = x + self.cproj(y)
        h = norm(x) * (1 + m[4][:, None]) + m[3][:, None]
        return x + m[5][:, None] * self.out(F.gelu(self.fc(h), approximate="tanh"))


class Dit(nn.Module):
    def __init__(self):
        super().__init__()
        d, p = WIDTH, PATCH * PATCH * 3
        self.patch_embed = nn.Linear(p, d)
        self.register_buffer("positions", grid_embedding(SIDE // PATCH, d))
        self.time_in, self.time_out = nn.Linear(256, d), nn.Linear(d, d)
        self.caption_in = nn.Linear(WIDTH, d)
        self.blocks = nn.ModuleList(DitBlock(d) for _ in range(LAYERS))
        self.final_adaln, self.final = nn.Linear(d, 2 * d), nn.Linear(d, p)

    def forward(self, x, t, states, pooled, mask):
        b, g = x.shape[0], SIDE // PATCH
        tokens = x.view(b, 3, g, PATCH, g, PATCH).permute(0, 2, 4, 3, 5, 1).reshape(b, g * g, -1)
        h = self.patch_embed(tokens) + self.positions
        c = self.time_out(F.silu(self.time_in(timestep_embedding(t)))) + self.caption_in(pooled)
        for block in self.blocks:
            h = block(h, c, states, mask)
        shift, scale = self.final_adaln(F.silu(c)).chunk(2, -1)
        h = F.layer_norm(h, (WIDTH,), eps=1e-6) * (1 + scale[:, None]) + shift[:, None]
        out = self.final(h).view(b, g, g, PATCH, PATCH, 3).permute(0, 5, 1, 3, 2, 4)
        return out.reshape(b, 3, SIDE, SIDE)


def captions(b, gen):
    lengths = torch.randint(3, 12, (b,), generator=gen)
    ids = torch.randint(0, VOCAB, (b, int(lengths.max())), generator=gen)
    return ids, lengths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    text, dit = TextEncoder().eval(), Dit()
    scheduler = DDIMScheduler(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
    alphas = scheduler.alphas_cumprod
    opt = torch.optim.AdamW(dit.parameters(), lr=1e-3, weight_decay=0.0)
    times = []
    for step in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        b = args.batch_size
        x0 = torch.rand(b, 3, SIDE, SIDE, generator=gen) * 2 - 1
        ids, lengths = captions(b, gen)
        with torch.no_grad():
            states, pooled, mask = text(ids, lengths)
        t = torch.randint(0, 1000, (b,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = alphas[t].sqrt()[:, None, None, None]
        s = (1 - alphas[t]).sqrt()[:, None, None, None]
        loss = F.mse_loss(dit(a * x0 + s * noise, t, states, pooled, mask), a * noise - s * x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dit.parameters(), 1.0)
        opt.step()
        if step >= args.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    print(f"training: median {statistics.median(times):.1f} ms/iter")
    dit.eval()
    rounds = []
    n = args.images
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        with torch.no_grad():
            ids, lengths = captions(n, gen)
            empty = torch.zeros(n, 1, dtype=torch.long)
            cond = text(ids, lengths)
            uncond = text(empty, torch.ones(n, dtype=torch.long))
            width = ids.shape[1]
            states = torch.cat([cond[0], F.pad(uncond[0], (0, 0, 0, width - 1))])
            pooled = torch.cat([cond[1], uncond[1]])
            mask = torch.cat([cond[2], F.pad(uncond[2], (0, width - 1))])
            scheduler.set_timesteps(args.steps)
            x = torch.randn(n, 3, SIDE, SIDE, generator=gen)
            for t in scheduler.timesteps:
                out = dit(torch.cat([x, x]), t.repeat(2 * n), states, pooled, mask)
                c, u = out.chunk(2)
                x = scheduler.step(u + 4.0 * (c - u), t, x).prev_sample
        rounds.append(time.perf_counter() - t0)
    seconds = statistics.median(rounds)
    print(f"sampling: {n} pictures, {args.steps} DDIM steps with guidance in {seconds:.2f} s ({n / seconds:.2f} images/s)")


if __name__ == "__main__":
    main()
