#!/usr/bin/env bash
# Install torch's CPU build into the environment of the Python given, unless that torch version is
# already there: a CUDA build installed by hand (see README, "GPU set-up") is kept.
#   usage: scripts/install_torch.sh PYTHON VERSION [CPU_INDEX]
# requirements.lock names plain `torch==VERSION` and none of the CUDA packages (nvidia-*, triton), so
# it installs over either build; this script decides which build a fresh environment gets. On Linux,
# PyPI's torch is the CUDA build (several GB with its nvidia-* packages), so the CPU build (+cpu) is
# taken from what pip already reaches (the course machines keep it on disk) or else from PyTorch's
# CPU index. On macOS, PyPI's torch is the CPU/MPS build.
set -euo pipefail
python=$1
version=$2
index=${3:-https://download.pytorch.org/whl/cpu}

if "$python" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$version')" 2>/dev/null; then
    echo "torch $("$python" -c 'import torch; print(torch.__version__)') is installed: kept"
    exit 0
fi
if [ "$(uname -s)" = Darwin ]; then
    exec "$python" -m pip install --quiet --no-deps "torch==$version"
fi
# Its dependencies (sympy, networkx, ...) come pinned from requirements.lock, hence --no-deps.
if "$python" -m pip install --quiet --no-deps "torch==$version+cpu" 2>/dev/null; then
    exit 0
fi
echo "torch $version+cpu is not in pip's configured indexes; taking it from $index"
"$python" -m pip install --quiet --no-deps "torch==$version+cpu" --index-url "$index"
