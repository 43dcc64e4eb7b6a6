"""Loads a Hugging Face folder that seer saved with transformers'
LlamaForCausalLM.from_pretrained (eager attention, float32) and its tokenizer
with AutoTokenizer, and checks transformers' logits for the tokens in
DIR/seer.safetensors (`tokens`, I64 [B, T]) against seer's (`logits`,
F32 [B, T, vocab]): max |diff| / max |seer| <= 1e-4. Run by
tests/llama_train.rs, which also passes a text: its ids, as the saved
tokenizer encodes them, are printed for the test to compare with seer's.
Exits non-zero with a message on any mismatch."""

import json
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlamaForCausalLM

folder, text = sys.argv[1], sys.argv[2]
model = LlamaForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
seer = load_file(f"{folder}/seer.safetensors")
with torch.no_grad():
    logits = model(input_ids=seer["tokens"]).logits
err = ((logits - seer["logits"]).abs().max() / seer["logits"].abs().max()).item()
if err > 1e-4:
    sys.exit(f"transformers' logits differ from seer's: relative error {err:.2e}")
ids = AutoTokenizer.from_pretrained(folder)(text, add_special_tokens=False)["input_ids"]
print(json.dumps({"ids": ids, "relative_error": err}))
