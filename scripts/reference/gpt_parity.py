"""Loads the tiny GPT that seer trained and saved (config.json +
model.safetensors) into transformers' GPT2LMHeadModel, and records, for a fixed
batch: logits, loss, the gradient of every parameter, and the losses of 10
AdamW steps with nanoGPT's parameter groups, gradient clipping and seer's
learning-rate schedule. Written to expected.safetensors for tests/parity.rs."""
import math
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import GPT2LMHeadModel

folder = Path(sys.argv[1])
torch.manual_seed(0)
model = GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager", torch_dtype=torch.float32)
cfg = model.config
rng = np.random.default_rng(0)
B, T = 3, 16
window = torch.tensor(rng.integers(0, cfg.vocab_size, size=(B, T + 1)), dtype=torch.long)
ids, targets = window[:, :T], window[:, 1:]


def loss_of(logits):
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


model.train()  # dropout is 0 in the tiny preset; train mode as seer's trainer
logits = model(ids).logits
loss = loss_of(logits)
loss.backward()
out = {
    "ids": ids.contiguous(),
    "targets": targets.contiguous(),
    "logits": logits.detach().contiguous(),
    "loss": loss.detach().reshape(1),
}
for name, p in model.named_parameters():
    out[f"grad.{name}"] = p.grad.detach().contiguous()

# 10 AdamW steps on the same batch, as seer's trainer takes them.
LR, MIN_LR, WARMUP, DECAY, CLIP = 1e-2, 1e-3, 3, 10, 1.0


def learning_rate(step):
    if step < WARMUP:
        return LR * (step + 1) / (WARMUP + 1)
    if step > DECAY:
        return MIN_LR
    coeff = 0.5 * (1.0 + math.cos(math.pi * (step - WARMUP) / (DECAY - WARMUP)))
    return MIN_LR + coeff * (LR - MIN_LR)


params = list(model.parameters())
groups = [
    {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
    {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
]
opt = torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.99), eps=1e-8, foreach=False)
losses, norms = [], []
for step in range(10):
    for g in opt.param_groups:
        g["lr"] = learning_rate(step)
    opt.zero_grad()
    step_loss = loss_of(model(ids).logits)
    step_loss.backward()
    norms.append(torch.nn.utils.clip_grad_norm_(params, CLIP).item())
    opt.step()
    losses.append(step_loss.item())
out["adamw_losses"] = torch.tensor(losses, dtype=torch.float64)
out["adamw_grad_norms"] = torch.tensor(norms, dtype=torch.float64)
save_file(out, str(folder / "expected.safetensors"))
print(f"wrote {folder / 'expected.safetensors'}: loss {loss.item():.6f}, adamw losses {losses}")
