#!/usr/bin/env bash
#! Creates (once) the virtual environment holding PyPI's torch 2.11.0, the libtorch that tch 0.24 binds.
# Idempotent and quiet when already done; prints the environment's folder on stdout.
set -euo pipefail
TORCH_VERSION=2.11.0
VENV="${ISCP_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/iscp/torch-$TORCH_VERSION}"
PY="$VENV/bin/python3"
if [ -x "$PY" ] && "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
  echo "$VENV"
  exit 0
fi
echo "setup: installing torch==$TORCH_VERSION into $VENV (about 5 GB, once)" >&2
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet --disable-pip-version-check "torch==$TORCH_VERSION" >&2
"$PY" -c "import torch; print('setup: torch', torch.__version__, 'ready', file=__import__('sys').stderr)"
echo "$VENV"
