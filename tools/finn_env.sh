#!/usr/bin/env bash
# The FINN environment of `make test-finn`: a virtual environment VENV (default build/venv-finn)
# with finn-plus 1.6.1, FINN's compiler front end, beside torch (pinned as in the Makefile; FINN's
# custom ops import it). No Vivado: the steps up to estimate reports are Python.
# Usage: tools/finn_env.sh [VENV] [TORCH_REQUIREMENT]
set -euo pipefail
venv=${1:-build/venv-finn}
torch=${2:-torch==2.13.0}
cd "$(dirname "$0")/.."
if [[ -f "$venv/.installed" && "$venv/.installed" -nt tools/finn-requirements.txt ]]; then
  exit 0
fi
python3 -m venv "$venv"
pip=("$venv/bin/pip" install --quiet --disable-pip-version-check)
"${pip[@]}" "$torch"
"${pip[@]}" --no-deps finn-plus==1.6.1
"${pip[@]}" -r tools/finn-requirements.txt "$torch"
touch "$venv/.installed"
