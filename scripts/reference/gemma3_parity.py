"""Gemma 3 reference fixtures for seer, and Hugging Face folders of the tiny
models, under tests/fixtures/llama/ (described in tests/fixtures/llama/README.md,
next to the Llama ones that llama_parity.py makes; this script reuses its
quantizers and helpers).

  tiny-gemma3-<type>.gguf   tiny random Gemma 3 text models (f32, q8_0, q4_k),
                            written as llama.cpp's convert_hf_to_gguf.py writes a
                            Gemma3ForCausalLM (norm weights stored as w + 1, q/k
                            NOT permuted, SentencePiece vocabulary)
  tiny_gemma3.safetensors   transformers' logits and hidden states for each
  tiny_gemma3.json          ids, config, tensor types, sha256, measured spreads
  hf-llama/                 tiny-f32.gguf's Llama as a transformers folder
  hf-gemma3/                tiny-gemma3-f32.gguf's model as a transformers folder (bf16)
  gemma3_270m.json          Gemma 3 270M Q4_K_M (not committed): logits, greedy text
  gemma3_270m_ppl.json      its perplexity on the last 10% of tinyshakespeare
  gemma3_tokenizer.json     its tokenizer on ~20 strings: transformers' ids and a
                            Python port of llama.cpp's SPM tokenizer

Run (CPU, a few minutes on two cores; the 270M part needs ~6 GB of memory):

  /work/venv/bin/python scripts/reference/gemma3_parity.py tests/fixtures/llama \
      [--gemma3 models/gemma-3-270m-q4_k_m.gguf] [--data data/tinyshakespeare.txt] \
      [--only tiny|hf|gemma3]

The Gemma 3 conventions (checked against llama.cpp's sources: convert_hf_to_gguf.py
Gemma3Model, src/llama-model.cpp LLM_ARCH_GEMMA3, src/models/gemma3.cpp,
src/llama-hparams.cpp) that ggml_gemma3_logits below writes out and that must
agree with transformers' Gemma3ForCausalLM:

- every `*norm.weight` (attn_norm, attn_q_norm, attn_k_norm, post_attention_norm,
  ffn_norm, post_ffw_norm, output_norm) is stored as 1 + w (Gemma3RMSNorm
  multiplies by 1 + w; the converter adds the 1, transformers' GGUF loader
  subtracts it); in the GGUF the norm is a plain RMSNorm times the stored weight;
- q/k are stored as in HF (no permutation): rope is NEOX style, pairing
  (x[i], x[i + head_dim/2]);
- q_norm / k_norm: an RMSNorm over each head (head_dim values), before rope;
- the embedding is multiplied by sqrt(hidden) (as float32) before layer 0; the
  output matrix is token_embd (tied, no output.weight);
- attention scale 1/sqrt(key_length) (llama.cpp: 1/sqrt(n_embd/n_head) only for
  the 62-layer 27B; transformers: query_pre_attn_scalar**-0.5, not in the GGUF,
  default 256 = head_dim of the real models);
- layer il is a sliding-window layer unless il % 6 == 5 (llama.cpp hard-codes the
  period 6 for gemma3; no GGUF key says it); sliding layers use rope base 10000
  (hard-coded), the others gemma3.rope.freq_base; a sliding layer lets query
  position p see key positions p - window + 1 .. p (window positions, itself
  included: llama.cpp masks p1 - p0 >= n_swa, transformers keeps kv > q - window);
- MLP: down(gelu_tanh(gate(x)) * up(x)); a layer is
  h = x + post_attention_norm(attn(attn_norm(x))); out = h + post_ffw_norm(mlp(ffn_norm(h)));
  then output_norm and the tied output; no final logit soft-capping.
"""
import argparse
import copy
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llama_parity as lp  # noqa: E402  (quantizers, helpers, the tiny Llama)

import gguf  # noqa: E402
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import GGUFReader, GGUFWriter, LlamaFileType  # noqa: E402
from gguf.quants import dequantize  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer,  # noqa: E402
                          Gemma3ForCausalLM, Gemma3TextConfig)

REPO = lp.REPO
SWA_PERIOD = 6          # llama.cpp: hparams.set_swa_pattern(6) for LLM_ARCH_GEMMA3
ROPE_BASE_SWA = 10000.0  # llama.cpp: hparams.rope_freq_base_train_swa = 10000.0f

# ---------------------------------------------------------------------------
# The tiny SentencePiece vocabulary: a BPE model trained by the sentencepiece
# library on the first 20000 characters of tinyshakespeare, shaped like
# Gemma's: <pad>=0 <eos>=1 <bos>=2 <unk>=3, control tokens <start_of_turn>=4
# and <end_of_turn>=5, byte fallback (<0x00>..<0xFF>), digits split, no dummy
# prefix, identity normalization, whitespace-only pieces allowed.

SPM_VOCAB = 400
TINY_TEXT = "ROMEO: What, 12 men?\n  The sea"


def train_spm(data):
    import sentencepiece as spm
    text = data.read_text()[:20000]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.splitlines(keepends=False)), model_writer=model,
        vocab_size=SPM_VOCAB, model_type="bpe", byte_fallback=True, split_digits=True,
        add_dummy_prefix=False, normalization_rule_name="identity", remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, character_coverage=1.0, num_threads=1,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
        unk_piece="<unk>", control_symbols=["<start_of_turn>", "<end_of_turn>"],
        minloglevel=2)
    return spm.SentencePieceProcessor(model_proto=model.getvalue())


def spm_vocab(sp):
    """convert_hf_to_gguf's _create_vocab_sentencepiece: piece, score, type per id."""
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(gguf.TokenType.UNKNOWN)
        elif sp.is_control(i):
            types.append(gguf.TokenType.CONTROL)
        elif sp.is_unused(i):
            types.append(gguf.TokenType.UNUSED)
        elif sp.is_byte(i):
            types.append(gguf.TokenType.BYTE)
        else:
            types.append(gguf.TokenType.NORMAL)
    return tokens, scores, types


# ---------------------------------------------------------------------------
# llama.cpp's SPM tokenizer (src/llama-vocab.cpp llm_tokenizer_spm +
# tokenizer_st_partition), ported to check transformers' GGUF tokenizer.

def llama_cpp_spm_tokenize(text, tokens, scores, types, add_space_prefix=False, parse_special=False):
    import heapq
    to_id = {}
    for i, t in enumerate(tokens):
        to_id.setdefault(t, i)
    # special tokens: CONTROL, USER_DEFINED, UNKNOWN; longest first. USER_DEFINED
    # are always matched whole; CONTROL/UNKNOWN only with parse_special.
    special = [i for i, ty in enumerate(types) if ty in (gguf.TokenType.CONTROL, gguf.TokenType.USER_DEFINED,
                                                         gguf.TokenType.UNKNOWN)]
    special.sort(key=lambda i: -len(tokens[i]))
    fragments = [text]                       # str = raw text, int = token id
    for i in special:
        if types[i] != gguf.TokenType.USER_DEFINED and not parse_special:
            continue
        t = tokens[i]
        if not t:
            continue
        out = []
        for f in fragments:
            if isinstance(f, int):
                out.append(f)
                continue
            while True:
                k = f.find(t)
                if k < 0:
                    break
                if k:
                    out.append(f[:k])
                out.append(i)
                f = f[k + len(t):]
            if f:
                out.append(f)
        fragments = out
    ids = []
    for f in fragments:
        if isinstance(f, int):
            ids.append(f)
            continue
        s = (" " + f if add_space_prefix else f).replace(" ", "\u2581")
        # symbols: one per UTF-8 character
        sym = [[c, k - 1, k + 1] for k, c in enumerate(s)]   # text, prev, next
        if sym:
            sym[-1][2] = -1
        heap = []

        def add(left, right):
            if left == -1 or right == -1:
                return
            t = sym[left][0] + sym[right][0]
            if t not in to_id:
                return
            tid = to_id[t]
            heapq.heappush(heap, (-scores[tid], left, right, len(t)))

        for k in range(1, len(sym)):
            add(k - 1, k)
        rev_parts = {}
        while heap:
            _, left, right, n = heapq.heappop(heap)
            if not sym[left][0] or not sym[right][0] or len(sym[left][0]) + len(sym[right][0]) != n:
                continue
            merged = sym[left][0] + sym[right][0]
            rev_parts[merged] = (sym[left][0], sym[right][0])
            sym[left][0] = merged
            sym[right][0] = ""
            sym[left][2] = sym[right][2]
            if sym[right][2] != -1:
                sym[sym[right][2]][1] = left
            add(sym[left][1], left)
            add(left, sym[left][2])

        def resegment(t):
            if t in to_id:
                ids.append(to_id[t])
                return
            if t in rev_parts:
                resegment(rev_parts[t][0])
                resegment(rev_parts[t][1])
                return
            for b in t.encode("utf-8"):
                ids.append(to_id[f"<0x{b:02X}>"])

        k = 0 if sym else -1
        while k != -1:
            if sym[k][0]:
                resegment(sym[k][0])
            k = sym[k][2]
    return ids


# ---------------------------------------------------------------------------
# The tiny Gemma 3 models.

GEMMA_FAMILIES = {
    # f32 and q8_0 (rows of 32): 7 layers, so layers 0-4 and 6 slide and layer 5 is global
    "small": dict(types=["F32", "Q8_0"], seed=11,
                  config=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=7,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=32)),
    # q4_k (rows of 256): hidden 256, 2 heads of 128 (attn_output rows 256), ffn 256;
    # 6 layers (0-4 slide, 5 is global) to stay small
    "k": dict(types=["Q4_K"], seed=12,
              config=dict(hidden_size=256, intermediate_size=256, num_hidden_layers=6,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=128)),
}
GEMMA_COMMON = dict(sliding_window=4, rope_theta_global=100000.0, rms_norm_eps=1e-6, max_position_embeddings=128)
GEMMA_FILE_TYPE = {"F32": LlamaFileType.ALL_F32, "Q8_0": LlamaFileType.MOSTLY_Q8_0,
                   "Q4_K": LlamaFileType.MOSTLY_Q4_K_S}


def bf16_exact(t):
    return t.to(torch.bfloat16).to(torch.float32)


def make_gemma(family, vocab_size):
    spec = GEMMA_FAMILIES[family]
    c = spec["config"]
    config = Gemma3TextConfig(
        vocab_size=vocab_size, query_pre_attn_scalar=c["head_dim"],
        sliding_window=GEMMA_COMMON["sliding_window"], rms_norm_eps=GEMMA_COMMON["rms_norm_eps"],
        max_position_embeddings=GEMMA_COMMON["max_position_embeddings"],
        rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": GEMMA_COMMON["rope_theta_global"]},
                         "sliding_attention": {"rope_type": "default", "rope_theta": ROPE_BASE_SWA}},
        hidden_activation="gelu_pytorch_tanh", final_logit_softcapping=None, attn_logit_softcapping=None,
        tie_word_embeddings=True, bos_token_id=2, eos_token_id=1, pad_token_id=0,
        attention_bias=False, **c)
    config.layer_types = ["full_attention" if (i + 1) % SWA_PERIOD == 0 else "sliding_attention"
                          for i in range(c["num_hidden_layers"])]
    torch.manual_seed(spec["seed"])
    model = Gemma3ForCausalLM(config).eval()
    # N(0, 1/fan_in) weights, embeddings N(0, 1/hidden) (times sqrt(hidden) in the
    # model: unit scale), norm weights w ~ N(0, 0.2^2) so 1 + w is away from 1.
    # All rounded to bfloat16 (norm weights to multiples of 2^-8, |w| < 1), so the
    # bf16 HF folder, the f32 GGUF and w + 1 in f32 hold exactly the same numbers.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.round(torch.clamp(0.2 * torch.randn_like(p), -0.95, 0.95) * 256) / 256)
            elif "embed_tokens" in name:
                p.copy_(bf16_exact(torch.randn_like(p) / math.sqrt(p.shape[1])))
            else:
                p.copy_(bf16_exact(torch.randn_like(p) / math.sqrt(p.shape[1])))
    return model


def gemma_gguf_tensors(model):
    """HF state dict -> (GGUF name, float32 array), as convert_hf_to_gguf's
    Gemma3Model: names mapped, every norm weight + 1, q/k not permuted."""
    c = model.config
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}

    def norm(k):
        return (sd[k] + np.float32(1.0)).astype(np.float32)

    out = [("token_embd.weight", sd["model.embed_tokens.weight"])]
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        out += [
            (f"blk.{i}.attn_norm.weight", norm(p + "input_layernorm.weight")),
            (f"blk.{i}.attn_q.weight", sd[p + "self_attn.q_proj.weight"]),
            (f"blk.{i}.attn_k.weight", sd[p + "self_attn.k_proj.weight"]),
            (f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"]),
            (f"blk.{i}.attn_q_norm.weight", norm(p + "self_attn.q_norm.weight")),
            (f"blk.{i}.attn_k_norm.weight", norm(p + "self_attn.k_norm.weight")),
            (f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"]),
            (f"blk.{i}.post_attention_norm.weight", norm(p + "post_attention_layernorm.weight")),
            (f"blk.{i}.ffn_norm.weight", norm(p + "pre_feedforward_layernorm.weight")),
            (f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"]),
            (f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"]),
            (f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"]),
            (f"blk.{i}.post_ffw_norm.weight", norm(p + "post_feedforward_layernorm.weight")),
        ]
    out.append(("output_norm.weight", norm("model.norm.weight")))
    return out


CHAT_TEMPLATE_GEMMA = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}")


def write_gemma_gguf(path, model, qtype_name, vocab):
    c = model.config
    qtype = T[qtype_name]
    tokens, scores, types = vocab
    w = GGUFWriter(str(path), "gemma3")
    w.add_type("model")
    w.add_name(f"seer tiny gemma3 {qtype_name}")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_key_length(c.head_dim)
    w.add_value_length(c.head_dim)
    w.add_rope_freq_base(c.rope_parameters["full_attention"]["rope_theta"])
    w.add_sliding_window(c.sliding_window)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    w.add_chat_template(CHAT_TEMPLATE_GEMMA)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_file_type(GEMMA_FILE_TYPE[qtype_name])
    out_types = {}
    for name, arr in gemma_gguf_tensors(model):
        if arr.ndim == 1:
            w.add_tensor(name, arr.astype(np.float32))
            out_types[name] = "F32"
            continue
        data = lp.quantize_any(arr, qtype)
        if qtype in (T.F32, T.F16):
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=qtype)
        out_types[name] = qtype_name
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out_types


def load_gemma_gguf(folder, name, dtype=torch.float32, attn="eager"):
    """transformers' GGUF loader, with query_pre_attn_scalar set to the head
    dim (the GGUF has no such key and transformers would default it to 256;
    llama.cpp scales by 1/sqrt(key_length))."""
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    config.query_pre_attn_scalar = config.head_dim
    return AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, config=config, dtype=dtype,
                                                attn_implementation=attn).eval()


def gguf_arrays(path, dtype=np.float64, skip=()):
    reader = GGUFReader(str(path))
    t = {}
    for tensor in reader.tensors:
        if tensor.name in skip:
            continue
        shape = [int(s) for s in reversed(tensor.shape)]
        t[tensor.name] = dequantize(tensor.data, tensor.tensor_type).reshape(shape).astype(dtype)
    fields = {k: v.contents() for k, v in reader.fields.items() if k.startswith("gemma3.")}
    return fields, t


def ggml_gemma3_logits(path, ids, last_only=False, t=None, f=None):
    """The forward pass written out in numpy float64 on the GGUF layout as
    llama.cpp's gemma3 graph computes it (see the docstring)."""
    if t is None:
        f, t = gguf_arrays(path)
    H = f["gemma3.embedding_length"]
    n_head, n_kv = f["gemma3.attention.head_count"], f["gemma3.attention.head_count_kv"]
    hd = f["gemma3.attention.key_length"]
    eps = f["gemma3.attention.layer_norm_rms_epsilon"]
    base_global = f["gemma3.rope.freq_base"]
    n_swa = f["gemma3.attention.sliding_window"]
    T_ = len(ids)

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    def rope_neox(x, base):                          # x [T, heads, hd]; pairs (i, i + hd/2)
        angle = np.arange(T_)[:, None] * base ** (-np.arange(0, hd, 2) / hd)
        cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
        a, b = x[..., : hd // 2], x[..., hd // 2:]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], -1)

    def gelu_tanh(x):
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))

    pos = np.arange(T_)
    causal = pos[None, :] > pos[:, None]                    # [q, k] key in the future
    too_far = (pos[:, None] - pos[None, :]) >= n_swa          # llama.cpp: p1 - p0 >= n_swa is masked
    x = t["token_embd.weight"][ids] * float(np.float32(math.sqrt(H)))
    for i in range(f["gemma3.block_count"]):
        swa = i % SWA_PERIOD < SWA_PERIOD - 1
        base = ROPE_BASE_SWA if swa else base_global
        mask = np.where(causal | (too_far if swa else False), -np.inf, 0.0)
        h = rms(x, t[f"blk.{i}.attn_norm.weight"])
        q = rms((h @ t[f"blk.{i}.attn_q.weight"].T).reshape(T_, n_head, hd), t[f"blk.{i}.attn_q_norm.weight"])
        k = rms((h @ t[f"blk.{i}.attn_k.weight"].T).reshape(T_, n_kv, hd), t[f"blk.{i}.attn_k_norm.weight"])
        v = (h @ t[f"blk.{i}.attn_v.weight"].T).reshape(T_, n_kv, hd)
        q, k = rope_neox(q, base) / math.sqrt(hd), rope_neox(k, base)
        heads = []
        for hh in range(n_head):
            kv = hh // (n_head // n_kv)
            s = q[:, hh] @ k[:, kv].T + mask
            p = np.exp(s - s.max(-1, keepdims=True))
            heads.append((p / p.sum(-1, keepdims=True)) @ v[:, kv])
        a = np.concatenate(heads, -1) @ t[f"blk.{i}.attn_output.weight"].T
        x = x + rms(a, t[f"blk.{i}.post_attention_norm.weight"])
        h = rms(x, t[f"blk.{i}.ffn_norm.weight"])
        m = (gelu_tanh(h @ t[f"blk.{i}.ffn_gate.weight"].T) * (h @ t[f"blk.{i}.ffn_up.weight"].T)) \
            @ t[f"blk.{i}.ffn_down.weight"].T
        x = x + rms(m, t[f"blk.{i}.post_ffw_norm.weight"])
    x = rms(x, t["output_norm.weight"])
    if last_only:
        x = x[-1:]
    return x @ t["token_embd.weight"].T


def tiny_gemma3_fixtures(out, data):
    sp = train_spm(data)
    vocab = spm_vocab(sp)
    tokens, scores, types = vocab
    results, meta = {}, {"text": TINY_TEXT, "files": []}
    ids = None
    models = {}
    for family, spec in GEMMA_FAMILIES.items():
        model = make_gemma(family, len(tokens))
        models[family] = model
        float_model = copy.deepcopy(model).double()
        for qtype_name in spec["types"]:
            name = f"tiny-gemma3-{qtype_name.lower()}.gguf"
            path = out / name
            ttypes = write_gemma_gguf(path, model, qtype_name, vocab)
            if ids is None:
                tok = AutoTokenizer.from_pretrained(out, gguf_file=name)
                ids = tok(TINY_TEXT, add_special_tokens=True).input_ids
                spm_ids = [2] + sp.encode(TINY_TEXT)
                cpp_ids = [2] + llama_cpp_spm_tokenize(TINY_TEXT, tokens, scores, types)
                assert ids == spm_ids == cpp_ids, (ids, spm_ids, cpp_ids)
                meta.update(ids=ids, tokens=tok.convert_ids_to_tokens(ids), vocab_size=len(tokens),
                            special_ids={"pad": 0, "eos": 1, "bos": 2, "unk": 3,
                                         "<start_of_turn>": sp.piece_to_id("<start_of_turn>"),
                                         "<end_of_turn>": sp.piece_to_id("<end_of_turn>"),
                                         "<0x00>": sp.piece_to_id("<0x00>")})
                results["ids"] = torch.tensor(ids, dtype=torch.int64)
                print(f"tokens: {len(ids)} {ids}")
            x = torch.tensor([ids])
            hf = load_gemma_gguf(out, name)
            assert hf.config.layer_types == model.config.layer_types, hf.config.layer_types
            assert hf.config.sliding_window == model.config.sliding_window
            logits, states = lp.forward_with_states(hf, x)
            key = qtype_name.lower()
            results[f"logits.{key}"] = logits.contiguous()
            results[f"hidden.{key}"] = states.contiguous()
            f64_logits, _ = lp.forward_with_states(copy.deepcopy(hf).double(), x)
            sdpa_logits, _ = lp.forward_with_states(load_gemma_gguf(out, name, attn="sdpa"), x)
            orig_logits, _ = lp.forward_with_states(float_model, x)
            ggml = ggml_gemma3_logits(path, ids)
            # the same model with every layer global: shows that the window matters here
            nowin = copy.deepcopy(hf)
            nowin.config.sliding_window = 10 ** 6       # sliding layers keep their rope base
            for layer in nowin.model.layers:
                if layer.self_attn.sliding_window is not None:
                    layer.self_attn.sliding_window = 10 ** 6
            nowin_logits, _ = lp.forward_with_states(nowin, x)
            c = hf.config
            entry = {
                "file": name, "type": qtype_name, "sha256": lp.sha256(path), "bytes": path.stat().st_size,
                "config": dict(vocab_size=c.vocab_size, hidden_size=c.hidden_size,
                               intermediate_size=c.intermediate_size, num_hidden_layers=c.num_hidden_layers,
                               num_attention_heads=c.num_attention_heads,
                               num_key_value_heads=c.num_key_value_heads, head_dim=c.head_dim,
                               rope_theta_global=c.rope_parameters["full_attention"]["rope_theta"],
                               rope_theta_sliding=c.rope_parameters["sliding_attention"]["rope_theta"],
                               sliding_window=c.sliding_window, layer_types=c.layer_types,
                               query_pre_attn_scalar=c.query_pre_attn_scalar, rms_norm_eps=c.rms_norm_eps,
                               tie_word_embeddings=c.tie_word_embeddings,
                               context_length=c.max_position_embeddings),
                "tensor_types": ttypes,
                "argmax": logits.argmax(-1).tolist(),
                "max_abs_diff_float64": float((logits.double() - f64_logits).abs().max()),
                "max_abs_diff_ggml": float(np.abs(logits.double().numpy() - ggml).max()),
                "max_abs_diff_sdpa": float((logits - sdpa_logits).abs().max()),
                "max_abs_diff_unquantized": float((logits.double() - orig_logits).abs().max()),
                "max_abs_diff_no_window": float((logits - nowin_logits).abs().max()),
                "logits_abs_max": float(logits.abs().max()),
            }
            meta["files"].append(entry)
            print(f"{name}: {entry['bytes']} B, f64 {entry['max_abs_diff_float64']:.2e}, "
                  f"ggml {entry['max_abs_diff_ggml']:.2e}, sdpa {entry['max_abs_diff_sdpa']:.2e}, "
                  f"unquantized {entry['max_abs_diff_unquantized']:.3f}, no window {entry['max_abs_diff_no_window']:.3f}, "
                  f"|logits| {entry['logits_abs_max']:.1f}")
    save_file(results, str(out / "tiny_gemma3.safetensors"))
    (out / "tiny_gemma3.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    return models["small"], meta


# ---------------------------------------------------------------------------
# Hugging Face folders.

CHAT_TEMPLATE_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def inline_chat_template(d, template, add_bos):
    """transformers 5 saves the template as chat_template.jinja; put it in
    tokenizer_config.json (one file to read) with add_bos_token spelled out."""
    (d / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["chat_template"] = template
    cfg["add_bos_token"] = add_bos
    cfg["add_eos_token"] = False
    (d / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


def hf_folders(out, gemma_small=None, data=None):
    report = {}
    # hf-llama: the model of tiny-f32.gguf (same seed, same weights), HF layout (q/k NOT permuted)
    tokens, token_types, merges, eot = lp.load_tokenizer()
    llama = lp.make_model("small", len(tokens), eot)
    d = out / "hf-llama"
    d.mkdir(exist_ok=True)
    llama.save_pretrained(d, safe_serialization=True)
    tok = AutoTokenizer.from_pretrained(out, gguf_file="tiny-f32.gguf")
    tok.chat_template = CHAT_TEMPLATE_CHATML
    tok.save_pretrained(d)
    inline_chat_template(d, CHAT_TEMPLATE_CHATML, add_bos=False)
    ref = json.loads((out / "tiny.json").read_text())
    from safetensors.torch import load_file
    tiny = load_file(str(out / "tiny.safetensors"))
    re_model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    re_tok = AutoTokenizer.from_pretrained(d)
    ids = re_tok(lp.TEXT, add_special_tokens=True).input_ids
    assert ids == ref["ids"], (ids, ref["ids"])
    with torch.no_grad():
        logits = re_model(torch.tensor([ids]), use_cache=False).logits[0]
    report["hf-llama"] = {
        "same_weights_as": "tiny-f32.gguf", "reference_logits": "tiny.safetensors logits.f32",
        "ids": ids, "max_abs_diff_vs_tiny_f32": float((logits - tiny["logits.f32"]).abs().max()),
        "chat_template_example": re_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                                            add_generation_prompt=True),
    }
    print("hf-llama:", report["hf-llama"]["max_abs_diff_vs_tiny_f32"])
    # hf-gemma3: the model of tiny-gemma3-f32.gguf, bf16 (every weight is bf16-exact)
    if gemma_small is None:
        sp = train_spm(data)
        gemma_small = make_gemma("small", sp.vocab_size())
    d = out / "hf-gemma3"
    d.mkdir(exist_ok=True)
    copy.deepcopy(gemma_small).to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    tok = AutoTokenizer.from_pretrained(out, gguf_file="tiny-gemma3-f32.gguf")
    tok.chat_template = CHAT_TEMPLATE_GEMMA
    tok.save_pretrained(d)
    inline_chat_template(d, CHAT_TEMPLATE_GEMMA, add_bos=True)
    gref = json.loads((out / "tiny_gemma3.json").read_text())
    gtiny = load_file(str(out / "tiny_gemma3.safetensors"))
    re_model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    re_tok = AutoTokenizer.from_pretrained(d)
    ids = re_tok(TINY_TEXT, add_special_tokens=True).input_ids
    assert ids == gref["ids"], (ids, gref["ids"])
    with torch.no_grad():
        logits = re_model(torch.tensor([ids]), use_cache=False).logits[0]
    chat = re_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    report["hf-gemma3"] = {
        "same_weights_as": "tiny-gemma3-f32.gguf (HF stores w, the GGUF 1 + w for norms)",
        "reference_logits": "tiny_gemma3.safetensors logits.f32", "dtype": "bfloat16",
        "ids": ids, "max_abs_diff_vs_tiny_gemma3_f32": float((logits - gtiny["logits.f32"]).abs().max()),
        "chat_template_example": chat,
        "chat_template_example_ids": re_tok(chat, add_special_tokens=False).input_ids,
    }
    print("hf-gemma3:", report["hf-gemma3"]["max_abs_diff_vs_tiny_gemma3_f32"], repr(chat),
          report["hf-gemma3"]["chat_template_example_ids"])
    (out / "hf_folders.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------
# Gemma 3 270M (Q4_K_M), dequantized by transformers.

GEMMA_PROMPTS = [
    ("short", "The sky is"),
    ("long", "The old lighthouse keeper climbed the spiral stairs every evening at dusk. He lit the great lamp, "
             "wound the clockwork that turned the lens, and then sat by the window to watch the ships. One night,"),
]
TOKENIZER_STRINGS = [
    "Hello world", "The sky is", " leading space", "two  spaces and   three", "tab\there\nnewline\n\nblank",
    "1234567890", "3.14159 + 2 = 5.14159", "x = [i**2 for i in range(10)]  # squares",
    "fn main() {\n    println!(\"hi\");\n}", "    indented code", "café naïve résumé Ærøskøbing",
    "日本語のテキスト", "中文，标点。", "한국어", "emoji 😀👍🏽 and 🇫🇷", "Ünïcödé ẞ ß",
    "<start_of_turn>user\nhi<end_of_turn>", "<bos>not parsed", "trailing space ", "   ",
    "ROMEO: But, soft! what light through yonder window breaks?",
]


def gemma3_fixture(out, gguf_path, data):
    folder, name = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    c = model.config
    assert c.query_pre_attn_scalar == c.head_dim == 256
    reader = GGUFReader(str(gguf_path))
    fl = reader.fields
    add_bos = bool(fl["tokenizer.ggml.add_bos_token"].contents())
    tokens = fl["tokenizer.ggml.tokens"].contents()
    scores = fl["tokenizer.ggml.scores"].contents()
    types = fl["tokenizer.ggml.token_type"].contents()
    meta = {
        "model": name,
        "sha256": lp.sha256(gguf_path),
        "tensor_types": {t.name: t.tensor_type.name for t in reader.tensors if "blk." not in t.name or ".0." in t.name},
        "add_bos_token": add_bos,
        "config": dict(hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers, head_dim=c.head_dim,
                       num_attention_heads=c.num_attention_heads, num_key_value_heads=c.num_key_value_heads,
                       intermediate_size=c.intermediate_size, vocab_size=c.vocab_size, sliding_window=c.sliding_window,
                       layer_types=c.layer_types, rope_parameters=c.rope_parameters, rms_norm_eps=c.rms_norm_eps,
                       query_pre_attn_scalar=c.query_pre_attn_scalar),
        "prompts": [],
    }
    f_ggml, t_ggml = gguf_arrays(gguf_path)
    for label, text in GEMMA_PROMPTS:
        ids = tok(text, add_special_tokens=True).input_ids
        assert ids[0] == 2 and ids[1:] == llama_cpp_spm_tokenize(text, tokens, scores, types), text
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(x, use_cache=False).logits[0].float()
        last = logits[-1]
        top = last.topk(50)
        logprobs = torch.log_softmax(last.double(), -1)
        seq, margins = list(ids), []
        with torch.no_grad():
            for _ in range(20):
                step = model(torch.tensor([seq]), use_cache=False).logits[0, -1]
                two = step.topk(2)
                seq.append(int(two.indices[0]))
                margins.append(float(two.values[0] - two.values[1]))
        generated = seq[len(ids):]
        ggml_last = ggml_gemma3_logits(gguf_path, ids, last_only=True, t=t_ggml, f=f_ggml)[-1]
        entry = {
            "label": label, "text": text, "ids": ids,
            "top50_ids": top.indices.tolist(), "top50_logits": [float(v) for v in top.values],
            "top50_tokens": tok.convert_ids_to_tokens(top.indices.tolist()),
            "logsumexp": float(torch.logsumexp(last.double(), -1)),
            "logit_mean": float(last.double().mean()), "logit_std": float(last.double().std()),
            "entropy": float(-(logprobs.exp() * logprobs).sum()),
            "argmax_every_position": logits.argmax(-1).tolist(),
            "max_abs_diff_ggml_last": float(np.abs(last.double().numpy() - ggml_last).max()),
            "greedy_ids": generated, "greedy_text": tok.decode(generated), "greedy_top2_margins": margins,
        }
        meta["prompts"].append(entry)
        print(f"{label}: {len(ids)} tokens, top1 {entry['top50_ids'][0]} {entry['top50_tokens'][0]!r} "
              f"{entry['top50_logits'][0]:.4f}, lse {entry['logsumexp']:.4f}, ggml {entry['max_abs_diff_ggml_last']:.1e}; "
              f"greedy {entry['greedy_text']!r}")
    del t_ggml
    (out / "gemma3_270m.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")

    # tokenizer check list
    entries = []
    for s in TOKENIZER_STRINGS:
        hf_ids = tok(s, add_special_tokens=False).input_ids
        cpp = llama_cpp_spm_tokenize(s, tokens, scores, types, parse_special=False)
        cpp_special = llama_cpp_spm_tokenize(s, tokens, scores, types, parse_special=True)
        entries.append({"text": s, "ids": hf_ids, "tokens": tok.convert_ids_to_tokens(hf_ids),
                        "llama_cpp_ids_parse_special": cpp_special, "llama_cpp_ids_no_parse_special": cpp,
                        "agree": hf_ids == cpp_special, "decoded": tok.decode(hf_ids)})
        print(f"tok {s!r}: {len(hf_ids)} ids, agree {hf_ids == cpp_special}, no-special {hf_ids == cpp}")
    (out / "gemma3_tokenizer.json").write_text(json.dumps(
        {"model": name, "add_special_tokens": False, "strings": entries}, indent=1, ensure_ascii=False) + "\n")

    # perplexity, llama-perplexity's method with BOS
    text = data.read_text()
    start = int(len(text) * 0.9)
    n_ctx, n_windows = 256, 8
    ids = tok(text[start:], add_special_tokens=True).input_ids      # [BOS] + text, as common_tokenize(.., true)
    assert ids[0] == 2 and add_bos
    first = n_ctx // 2
    nll, nll2, count, running, window_nll = 0.0, 0.0, 0, [], []
    with torch.no_grad():
        for k in range(n_windows):
            window = list(ids[k * n_ctx:(k + 1) * n_ctx])
            window[0] = 2                                              # BOS replaces the window's first token
            lg = model(torch.tensor([window]), use_cache=False).logits[0].double()
            token_nll = -torch.log_softmax(lg[first:n_ctx - 1], -1).gather(
                1, torch.tensor(window[first + 1:]).view(-1, 1))[:, 0]
            window_nll.append(float(token_nll.sum()))
            nll += window_nll[-1]
            nll2 += float((token_nll ** 2).sum())
            count += n_ctx - 1 - first
            running.append(math.exp(nll / count))
            print(f"window {k}: running ppl {running[-1]:.4f}")
    pmeta = {
        "model": name, "data": "data/tinyshakespeare.txt", "text_start_char": start,
        "text_rule": "text[int(len(text) * 0.9):], characters (ASCII); tokenized whole WITH BOS "
                     "(tokenizer.ggml.add_bos_token = true): ids[0] = 2 (<bos>), then the text's tokens",
        "n_ctx": n_ctx, "n_windows": n_windows,
        "window_rule": "window k = ids[k*n_ctx:(k+1)*n_ctx] with its first token replaced by BOS (2), "
                       "each a fresh sequence (positions 0..n_ctx-1); window 0 already starts with BOS",
        "scoring_rule": "logits at positions n_ctx/2 .. n_ctx-2 scored against ids at n_ctx/2+1 .. n_ctx-1 "
                        "(n_ctx - 1 - n_ctx/2 tokens per window), as llama-perplexity",
        "scored_tokens": count, "total_tokens_with_bos": len(ids), "nll_sum": nll,
        "ppl": math.exp(nll / count),
        "ppl_stderr": math.exp(nll / count) * math.sqrt((nll2 / count - (nll / count) ** 2) / (count - 1)),
        "window_nll_sum": window_nll, "running_ppl": running,
        "ids": ids[: n_windows * n_ctx],
    }
    (out / "gemma3_270m_ppl.json").write_text(json.dumps(pmeta) + "\n")
    print(f"ppl {pmeta['ppl']:.4f} +/- {pmeta['ppl_stderr']:.5f} over {count} tokens")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--gemma3", type=Path, default=REPO / "models/gemma-3-270m-q4_k_m.gguf")
    parser.add_argument("--data", type=Path, default=REPO / "data/tinyshakespeare.txt")
    parser.add_argument("--only", choices=["tiny", "hf", "gemma3"], default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    small = None
    if args.only in (None, "tiny"):
        small, _ = tiny_gemma3_fixtures(args.out, args.data)
    if args.only in (None, "hf"):
        hf_folders(args.out, small, args.data)
    if args.only in (None, "gemma3"):
        if not args.gemma3.exists():
            print(f"{args.gemma3} not found: Gemma 3 270M fixtures left as they are", file=sys.stderr)
            return
        gemma3_fixture(args.out, args.gemma3, args.data)


if __name__ == "__main__":
    main()
