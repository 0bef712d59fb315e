#!/usr/bin/env bash
# One-shot GPU check (benchmarks/gpu_check.py): the GPU tests, hash-grid kernel throughput against the
# PyTorch path, lego at 800 px for 5 minutes, and whether tinycudann imports; one table, <= 8 minutes
# on one H100. Uses the python that holds a CUDA PyTorch (PYTHON=..., default python3), this checkout
# on PYTHONPATH (nothing is installed). Pass --dry-run to check it on a CPU machine at toy sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
