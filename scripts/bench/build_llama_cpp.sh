#!/usr/bin/env bash
# Builds llama.cpp, the peer seer's open-model inference is compared with,
# from the source vendored in PyPI's llama-cpp-python 0.3.9 sdist, with cmake
# from PyPI. Two CPU builds:
#   $OUT/native  (-DGGML_NATIVE=ON: every instruction set of this CPU, AVX-512 if present)
#   $OUT/avx2    (AVX2 + FMA + F16C, no AVX-512: what most laptops and many cloud CPUs have)
# Tools built: llama-bench, llama-cli, llama-perplexity, llama-quantize, llama-simple.
#
#   scripts/bench/build_llama_cpp.sh [OUT]      # OUT defaults to ~/.cache/seer/llama.cpp
#
# Needs gcc/g++ and python3 with pip; takes about 10-15 minutes on 2 cores.
set -euo pipefail
out=${1:-$HOME/.cache/seer/llama.cpp}
version=0.3.9
mkdir -p "$out"
cd "$out"
if [ ! -d venv ]; then
    python3 -m venv venv
    venv/bin/pip install --quiet cmake ninja scikit-build-core
fi
if [ ! -d src ]; then
    # --no-build-isolation: pip reads the sdist's metadata with the tools above.
    venv/bin/pip download --quiet --no-deps --no-binary :all: --no-build-isolation \
        "llama-cpp-python==$version" -d .
    tar xzf "llama_cpp_python-$version.tar.gz"
    mv "llama_cpp_python-$version/vendor/llama.cpp" src
    rm -rf "llama_cpp_python-$version"
fi
build() { # build NAME CMAKE-FLAGS...
    local name=$1
    shift
    venv/bin/cmake -S src -B "build-$name" -G Ninja -DCMAKE_MAKE_PROGRAM="$PWD/venv/bin/ninja" \
        -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF "$@" >/dev/null
    venv/bin/cmake --build "build-$name" -j "$(nproc)" \
        --target llama-bench llama-cli llama-perplexity llama-quantize llama-simple >/dev/null
    mkdir -p "$name"
    cp "build-$name"/bin/llama-{bench,cli,perplexity,quantize,simple} "$name/"
}
[ -x native/llama-bench ] || build native -DGGML_NATIVE=ON
[ -x avx2/llama-bench ] || build avx2 -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
    -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_BMI2=ON
echo "$out/native $out/avx2"
