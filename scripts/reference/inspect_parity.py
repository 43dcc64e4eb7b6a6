"""What `seer inspect next` and `seer inspect attention` must reproduce:
for each prompt of the Hugging Face GPT-2 fixture (tests/fixtures/hf_gpt2,
made by hf_gpt2_parity.py), transformers' next-token probabilities after
the prompt (softmax of the last logits, temperature 1) and its attention
weights (output_attentions=True, eager attention), written to
inspect.safetensors for tests/inspect.rs."""
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2LMHeadModel

folder = Path(sys.argv[1])
expected = load_file(str(folder / "expected.safetensors"))
model = GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager").eval()
out = {}
with torch.no_grad():
    i = 0
    while f"ids.{i}" in expected:
        ids = expected[f"ids.{i}"].long().view(1, -1)
        result = model(ids, output_attentions=True)
        out[f"probs.{i}"] = torch.softmax(result.logits[0, -1].double(), dim=-1).contiguous()
        # [layer, head, query, key]
        out[f"attention.{i}"] = torch.stack([a[0] for a in result.attentions]).contiguous()
        i += 1
save_file(out, str(folder / "inspect.safetensors"))
print(f"wrote {folder / 'inspect.safetensors'}: {i} prompts")
