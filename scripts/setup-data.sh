#!/usr/bin/env bash
#! Installs Debian's dataset-fashion-mnist (once) where apt is usable; otherwise says what to do.
set -euo pipefail
DIR=/usr/share/datasets/fashion-mnist
if [ -f "$DIR/train-images-idx3-ubyte.gz" ]; then exit 0; fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup: installing Debian's dataset-fashion-mnist" >&2
  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1) \
    || (apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null)
  exit 0
fi
cat >&2 <<MSG
setup: Fashion-MNIST is not at $DIR and apt-get is not usable here (needs root).
  Either run:   sudo apt-get install dataset-fashion-mnist
  or download the four IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
  t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into a folder and set [data] path
  in experiments/fashion-mnist.toml to it.
MSG
exit 1
