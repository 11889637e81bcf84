#!/usr/bin/env bash
#! Creates (once) a small virtual environment with polars, pandas and pyarrow, used by the tests
#! that check the Parquet tables read in Python as the README promises, and websocket-client, with
#! which the report's browser test drives Chromium, and pyyaml and the kubernetes client, whose
#! object schemas check the deployment manifests. Prints its python's path.
set -euo pipefail
VENV="${ISCP_PYREAD_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/iscp/pyread}"
if ! "$VENV/bin/python3" -c "import polars, pandas, pyarrow, websocket, yaml, kubernetes.client.models as m; m.V1Pod.model_validate" 2>/dev/null; then
  echo "setup: installing polars, pandas, pyarrow, websocket-client, pyyaml and kubernetes into $VENV (once)" >&2
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check polars pandas pyarrow websocket-client pyyaml "kubernetes==37.0.2" >&2
fi
echo "$VENV/bin/python3"
