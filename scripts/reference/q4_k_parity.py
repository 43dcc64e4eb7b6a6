"""Reference fixture for seer's Q4_K quantizer: what llama.cpp's own
`llama-quantize` writes for given f32 rows, so that the Rust test can demand
the same bytes (tests/fixtures/llama/quant_q4_k.safetensors; described in
tests/fixtures/llama/README.md).

gguf-py 0.19 cannot quantize K-quants, so the reference is llama-quantize
itself: with `--pure` and no importance matrix every 2-D tensor goes through
ggml's `quantize_row_q4_K_ref` (`quantize_q4_K` with `quant_weights == NULL`).
ggml-quants.c is compiled without `-march` flags (see the build's
compile_commands.json), so no multiply-add is fused and the result is a pure
function of the f32 input.

Steps:
  1. take the k family's tiny Llama (`tiny-q4_k.gguf`: hidden 256, ffn 512,
     tied embeddings) for its metadata, tensor names and shapes; write an F32
     GGUF with the same metadata (file_type 0) and fresh seeded weights,
     N(0, 1/fan_in), norms as the file dequantizes them;
  2. plant edge-case rows into `blk.0.ffn_down.weight` (rows of 512, two
     super-blocks): zeros, a constant, all negative, all positive, values
     so small that the f16 scale underflows to 0, one large outlier, one
     zero sub-block, values already on a 4-bit grid, a large scale;
  3. `llama-quantize --pure F32.gguf Q4K.gguf Q4_K_S`;
  4. store, per chosen tensor, the f32 input rows and the Q4_K bytes of
     those rows: `<name>.input` F32 [rows, n] and `<name>.raw` U8
     [rows, n/256*144], for `blk.0.ffn_down.weight` (rows 0..12: the 9
     planted rows and 3 random), `blk.0.attn_q.weight` and
     `token_embd.weight` (rows 0..8 each).

Run:

  /work/venv/bin/python scripts/reference/q4_k_parity.py tests/fixtures/llama \
      [--llama-quantize /work/cache/llama.cpp/native/llama-quantize]
"""

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize
from safetensors.numpy import save_file

PLANTED = "blk.0.ffn_down.weight"
ROWS = {PLANTED: 12, "blk.0.attn_q.weight": 8, "token_embd.weight": 8}


def planted_rows(n, rng):
    """Nine rows of length n that exercise the corners of make_qkx2_quants."""
    rows = np.zeros((9, n), dtype=np.float32)
    rows[1] = 0.5                                                   # constant: max == min
    rows[2] = -np.abs(rng.normal(0, 0.05, n))                       # all negative
    rows[3] = np.abs(rng.normal(0, 0.05, n)) + 0.01                 # all positive (min > 0 clamped to 0)
    rows[4] = rng.normal(0, 1e-9, n)                                # f16 d underflows to 0
    rows[5] = rng.normal(0, 0.02, n)
    rows[5, 37] = 3.0                                               # one outlier
    rows[6] = rng.normal(0, 0.05, n)
    rows[6, 32:64] = 0.0                                            # one all-zero sub-block
    rows[7] = (rng.integers(-8, 8, n) * 0.01).astype(np.float32)    # already on a 4-bit grid
    rows[8] = rng.normal(0, 300.0, n)                               # large scale
    return rows


def copy_metadata(reader, writer):
    for field in reader.fields.values():
        name = field.name
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if name == "general.file_type":
            writer.add_uint32(name, 0)
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub_type=sub)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--llama-quantize", default="/work/cache/llama.cpp/native/llama-quantize")
    args = ap.parse_args()
    rng = np.random.default_rng(20240917)
    src = GGUFReader(args.out / "tiny-q4_k.gguf")
    with tempfile.TemporaryDirectory() as tmp:
        f32_path, q_path = Path(tmp) / "k-f32.gguf", Path(tmp) / "k-q4_k.gguf"
        writer = GGUFWriter(str(f32_path), "llama")
        copy_metadata(src, writer)
        inputs = {}
        for t in src.tensors:
            shape = tuple(int(d) for d in reversed(t.shape))  # numpy order: [rows, n]
            if len(shape) == 1:
                data = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
            else:
                data = rng.normal(0, 1 / np.sqrt(shape[1]), shape).astype(np.float32)
                if t.name == PLANTED:
                    data[:9] = planted_rows(shape[1], rng)
            if t.name in ROWS:
                inputs[t.name] = data[: ROWS[t.name]].copy()
            writer.add_tensor(t.name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        subprocess.run([args.llama_quantize, "--pure", str(f32_path), str(q_path), "Q4_K_S"],
                       check=True, capture_output=True)
        quantized = {t.name: t for t in GGUFReader(q_path).tensors}
        tensors = {}
        for name, rows in inputs.items():
            t = quantized[name]
            assert t.tensor_type == GGMLQuantizationType.Q4_K, (name, t.tensor_type)
            raw = np.asarray(t.data).reshape(-1, rows.shape[1] // 256 * 144)[: rows.shape[0]]
            back = dequantize(raw, GGMLQuantizationType.Q4_K).reshape(rows.shape)
            err = np.abs(back - rows).max() / max(np.abs(rows).max(), 1e-30)
            print(f"{name}: {rows.shape}, max relative error after the round trip {err:.3g}")
            tensors[f"{name}.input"] = rows
            tensors[f"{name}.raw"] = np.ascontiguousarray(raw, dtype=np.uint8)
    save_file(tensors, str(args.out / "quant_q4_k.safetensors"))


if __name__ == "__main__":
    main()
