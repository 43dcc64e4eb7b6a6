"""Reference fixtures for training the Llama family in seer, under
tests/fixtures/llama_train/ (tests/llama_train.rs reads them; nothing here runs
at test time and nothing is downloaded).

Two tiny random LlamaForCausalLM models with grouped-query attention, each in
its own folder, written by transformers' save_pretrained (float32):

  untied/   hidden 32, intermediate 48, 2 layers, 4 heads of 8, 2 KV heads,
            vocab 64, rope_theta 10000, rms_norm_eps 1e-5, lm_head.weight present
  tied/     the same shape with 1 layer, tie_word_embeddings = true
            (rope_theta 500000, so that a hard-coded base shows)

and in each folder `expected.safetensors`:

  tokens   I64 [3, 12]   input ids (row 2 right-padded with id 0 from position 8)
  targets  I64 [3, 12]   the id each position predicts: the next input id, and
                         an arbitrary id where the mask is 0 (the last position,
                         the padding)
  mask     F32 [3, 12]   1 where the loss counts (the "assistant" tokens of an
                         SFT batch), 0 elsewhere
  logits   F32 [3, 12, vocab]  the model's logits (no attention mask: causal
                         only, so padding never reaches a real position)
  loss     F32 [1]       -sum(mask * log_softmax(logits)[targets]) / sum(mask);
                         checked equal to transformers' own loss with the
                         unmasked ids as labels and -100 elsewhere
  grad.<name>   the gradient of that loss for every parameter (HF names;
                a tied model's embedding gradient includes the output layer's)
  step5.<name>  every parameter after 5 torch.optim.AdamW steps on that same
                batch: lr 1e-2 constant, betas (0.9, 0.95), eps 1e-8, weight
                decay 0.1 on parameters of rank >= 2 (matrices and
                embeddings), 0 on the norm weights; no clipping, no scheduler
  losses   F32 [6]       the loss before each step and after the fifth

The models are computed as they are reloaded from their folder
(LlamaForCausalLM.from_pretrained, attn_implementation="eager", float32, CPU).
Weights are N(0, 1/fan_in), embeddings N(0, 4/hidden), norm weights
N(1, 0.2^2), so that logits spread out and the attention is far from uniform.

Run (seconds, CPU):

  /work/venv/bin/python scripts/reference/llama_train_parity.py tests/fixtures/llama_train

Needs torch, transformers 5.x, safetensors. Seeded: rerunning writes the same
weights (the float results up to the host's summation order).
"""

import json
import math
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

VOCAB = 64
B, T = 3, 12
LR, BETAS, EPS, WEIGHT_DECAY, STEPS = 1e-2, (0.9, 0.95), 1e-8, 0.1, 5

MODELS = {
    "untied": dict(num_hidden_layers=2, rope_theta=10000.0, tie_word_embeddings=False, seed=1),
    "tied": dict(num_hidden_layers=1, rope_theta=500000.0, tie_word_embeddings=True, seed=2),
}


def make_model(spec):
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48,
        num_hidden_layers=spec["num_hidden_layers"], num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
        rms_norm_eps=1e-5, rope_theta=spec["rope_theta"],
        tie_word_embeddings=spec["tie_word_embeddings"], attention_bias=False,
        mlp_bias=False, hidden_act="silu", bos_token_id=0, eos_token_id=0)
    torch.manual_seed(spec["seed"])
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif "embed_tokens" in name:
                p.copy_(2.0 * torch.randn_like(p) / math.sqrt(p.shape[1]))
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]))
    return model


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, VOCAB, (B, T), generator=g)
    tokens[2, 8:] = 0  # right padding
    mask = torch.zeros(B, T)
    mask[0, 3:T - 1] = 1  # a "prompt" of 3 tokens, then the answer
    mask[1, 6:T - 1] = 1
    mask[2, 2:7] = 1  # row 2's last real token (position 7) has no successor
    targets = torch.randint(0, VOCAB, (B, T), generator=g)  # arbitrary where masked
    targets[:, :-1] = torch.where(mask[:, :-1] > 0, tokens[:, 1:], targets[:, :-1])
    return tokens, targets, mask


def masked_loss(model, tokens, targets, mask):
    logits = model(input_ids=tokens).logits
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return -(log_probs * mask).sum() / mask.sum(), logits


def main():
    out = Path(sys.argv[1])
    for kind, spec in MODELS.items():
        folder = out / kind
        make_model(spec).save_pretrained(folder)
        model = LlamaForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
        model.train()  # no dropout in Llama; train mode changes nothing else
        tokens, targets, mask = batch(spec["seed"] + 10)

        loss, logits = masked_loss(model, tokens, targets, mask)
        # transformers' own loss: labels at position t+1 are the targets of t.
        labels = torch.full((B, T), -100)
        labels[:, 1:] = torch.where(mask[:, :-1] > 0, targets[:, :-1], -100)
        assert mask[:, -1].sum() == 0
        hf_loss = model(input_ids=tokens, labels=labels).loss
        assert torch.allclose(loss, hf_loss, rtol=1e-6, atol=0), (loss, hf_loss)
        loss.backward()
        named = dict(model.named_parameters())
        tensors = {
            "tokens": tokens, "targets": targets, "mask": mask,
            "logits": logits.detach().contiguous(), "loss": loss.detach().reshape(1),
        }
        for name, p in named.items():
            tensors[f"grad.{name}"] = p.grad.detach().clone()

        decay = [p for p in named.values() if p.dim() >= 2]
        no_decay = [p for p in named.values() if p.dim() < 2]
        opt = torch.optim.AdamW([
            {"params": decay, "weight_decay": WEIGHT_DECAY},
            {"params": no_decay, "weight_decay": 0.0},
        ], lr=LR, betas=BETAS, eps=EPS)
        opt.zero_grad()
        losses = []
        for _ in range(STEPS):
            loss, _ = masked_loss(model, tokens, targets, mask)
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses.append(masked_loss(model, tokens, targets, mask)[0].item())
        for name, p in named.items():
            tensors[f"step5.{name}"] = p.detach().clone()
        tensors["losses"] = torch.tensor(losses)
        save_file({k: v.contiguous() for k, v in tensors.items()}, folder / "expected.safetensors")
        info = {
            "transformers": transformers.__version__, "torch": torch.__version__,
            "loss": losses[0], "losses": losses, "lr": LR, "betas": list(BETAS), "eps": EPS,
            "weight_decay": WEIGHT_DECAY, "steps": STEPS,
            "parameters": {n: list(p.shape) for n, p in named.items()},
        }
        (folder / "expected.json").write_text(json.dumps(info, indent=1) + "\n")
        print(kind, "loss", losses[0], "->", losses[-1])


if __name__ == "__main__":
    main()
