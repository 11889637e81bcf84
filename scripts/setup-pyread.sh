#!/usr/bin/env bash
#! Creates (once) a small virtual environment with polars, pandas and pyarrow, used by the tests
#! that check the Parquet tables read in Python as the README promises, and websocket-client, with
#! which the report's browser test drives Chromium. Prints its python's path.
set -euo pipefail
VENV="${ISCP_PYREAD_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/iscp/pyread}"
if ! "$VENV/bin/python3" -c "import polars, pandas, pyarrow, websocket" 2>/dev/null; then
  echo "setup: installing polars, pandas, pyarrow and websocket-client into $VENV (once)" >&2
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check polars pandas pyarrow websocket-client >&2
fi
echo "$VENV/bin/python3"
