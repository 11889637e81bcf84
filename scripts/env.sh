# Sourced by the Makefile: makes sure torch is installed, then exports what tch's build needs.
# (A `#!` header would be pointless here: this file is only ever sourced.)
ISCP_TORCH_VENV="$("$(dirname "${BASH_SOURCE[0]}")/setup-torch.sh")" || return 1
export ISCP_TORCH_VENV
export LIBTORCH_USE_PYTORCH=1
export PATH="$ISCP_TORCH_VENV/bin:$PATH"
ISCP_TORCH_LIB="$(ls -d "$ISCP_TORCH_VENV"/lib/python3*/site-packages/torch/lib | head -n 1)"
export ISCP_TORCH_LIB
export LD_LIBRARY_PATH="$ISCP_TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
