"""A Hugging Face GPT-2 checkpoint for seer to load: a randomly initialised
small GPT2LMHeadModel saved with save_pretrained (config.json +
model.safetensors) and a byte-level BPE tokenizer in GPT-2's vocab.json +
merges.txt form; plus the model's logits for several inputs and its greedy
continuation, in expected.safetensors, for tests/hf_interop.rs."""
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel

folder = Path(sys.argv[1])
corpus = Path(sys.argv[2]).read_text()
folder.mkdir(parents=True, exist_ok=True)

tok = ByteLevelBPETokenizer()
tok.train_from_iterator([corpus], vocab_size=300, min_frequency=2, special_tokens=["<|endoftext|>"])
tok.save_model(str(folder))  # vocab.json + merges.txt

torch.manual_seed(0)
config = GPT2Config(
    vocab_size=tok.get_vocab_size(),
    n_positions=64,
    n_embd=48,
    n_layer=2,
    n_head=3,
    bos_token_id=tok.token_to_id("<|endoftext|>"),
    eos_token_id=tok.token_to_id("<|endoftext|>"),
    # Larger random weights than GPT-2's 0.02, so that logits are far apart
    # and the greedy continuation is not a single repeated token.
    initializer_range=0.3,
)
model = GPT2LMHeadModel(config).eval()
model.save_pretrained(folder, safe_serialization=True)

prompts = ["ROMEO:", "First Citizen:\nBefore we proceed", "a"]
out = {}
with torch.no_grad():
    for i, text in enumerate(prompts):
        ids = torch.tensor([tok.encode(text).ids])
        out[f"ids.{i}"] = ids[0].contiguous()
        out[f"logits.{i}"] = model(ids).logits[0].contiguous()
    # Greedy continuation of the first prompt: argmax, 20 tokens.
    ids = torch.tensor([tok.encode(prompts[0]).ids])
    for _ in range(20):
        next_id = model(ids).logits[0, -1].argmax()
        ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
    out["greedy"] = ids[0].contiguous()
save_file(out, str(folder / "expected.safetensors"))
(folder / "prompts.txt").write_text("\n---\n".join(prompts))
print(f"wrote {folder}: vocab {config.vocab_size}, greedy {ids[0].tolist()}")
