#!/usr/bin/env bash
# Makes the reference fixtures under tests/fixtures/ that the Rust tests
# compare against. seer writes the tokenizers and a small trained model; the
# Python reference stack (tokenizers, PyTorch, transformers from PyPI) reads
# them and records what it computes. The tests themselves never run Python.
#
#   python3 -m venv .venv-ref && .venv-ref/bin/pip install torch transformers tokenizers safetensors numpy diffusers gguf accelerate sentencepiece jinja2
#   PYTHON=.venv-ref/bin/python scripts/reference/make_fixtures.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
cargo build --release --quiet
SEER=target/release/seer
FIX=tests/fixtures
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Tokenizers: seer trains them, Python's tokenizers encodes with them.
mkdir -p "$FIX/tokenizers"
head -c 20000 data/tinyshakespeare.txt > "$WORK/corpus.txt"
"$SEER" prepare --tokenizer bpe --vocab-size 300 "$WORK/corpus.txt" -o "$WORK/bpe" > /dev/null
"$SEER" prepare --tokenizer char "$WORK/corpus.txt" -o "$WORK/char" > /dev/null
cp "$WORK/bpe/tokenizer.json" "$FIX/tokenizers/bpe.json"
cp "$WORK/char/tokenizer.json" "$FIX/tokenizers/char.json"
"$PYTHON" scripts/reference/tokenizer_parity.py "$FIX/tokenizers"

# The GPT: seer trains a tiny model for a few steps, PyTorch (transformers'
# GPT2LMHeadModel) loads it and records logits, loss, gradients and 10 AdamW steps.
mkdir -p "$FIX/gpt_tiny"
"$SEER" prepare --tokenizer char "$WORK/corpus.txt" -o "$WORK/gptdata" > /dev/null
"$SEER" train --data "$WORK/gptdata" --preset tiny --max-iters 3 -o "$WORK/run" --quiet > /dev/null
cp "$WORK/run/config.json" "$WORK/run/model.safetensors" "$FIX/gpt_tiny/"
"$PYTHON" scripts/reference/gpt_parity.py "$FIX/gpt_tiny"


# A Hugging Face GPT-2 folder (random weights, vocab.json + merges.txt) with
# transformers' logits and greedy continuation.
"$PYTHON" scripts/reference/hf_gpt2_parity.py "$FIX/hf_gpt2" "$WORK/corpus.txt"
# transformers' next-token probabilities and attention weights on it.
"$PYTHON" scripts/reference/inspect_parity.py "$FIX/hf_gpt2"
# Diffusion schedules and DDPM/DDIM steps, as diffusers computes them.
"$PYTHON" scripts/reference/diffusion_parity.py "$FIX/diffusion"
# Llama in GGUF: tiny random models in every tensor type seer reads, with
# transformers' logits; GGML blocks and their dequantized values; and, when
# SMOLLM2_GGUF names SmolLM2-135M-Instruct.Q4_1.gguf, its logits, greedy text
# and perplexity. (Reuses the hf_gpt2 tokenizer written above.)
"$PYTHON" scripts/reference/llama_parity.py "$FIX/llama" ${SMOLLM2_GGUF:+--smollm2 "$SMOLLM2_GGUF"}
# Gemma 3 in GGUF (tiny random models; Gemma 3 270M when GEMMA3_GGUF names
# gemma-3-270m-q4_k_m.gguf) and tiny Hugging Face folders of the tiny Llama/Gemma.
"$PYTHON" scripts/reference/gemma3_parity.py "$FIX/llama" ${GEMMA3_GGUF:+--gemma3 "$GEMMA3_GGUF"}
# Training the Llama family: tiny random LlamaForCausalLM folders (GQA; untied
# and tied) with transformers' masked loss, gradients and 5 AdamW steps.
"$PYTHON" scripts/reference/llama_train_parity.py "$FIX/llama_train"
# GGUF tokenizers and chat templates: SmolLM2's tokenizer metadata as a
# tokenizer-only GGUF, a tiny sentencepiece vocabulary, and transformers' ids
# and apply_chat_template strings (needs SMOLLM2_GGUF).
if [ -n "${SMOLLM2_GGUF:-}" ]; then
    "$PYTHON" scripts/reference/gguf_tokenizer_parity.py "$SMOLLM2_GGUF" "$FIX/gguf"
fi
echo "fixtures written to $FIX"
