# The iscp binary with libtorch 2.11.0 (CUDA) from PyPI's torch wheel, for the coordinator and GPU
# workers of docker-compose.yml. Build: docker build -t iscp:latest .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv && rm -rf /var/lib/apt/lists/*
# torch brings libtorch (and its CUDA runtime libraries as pip packages); tch 0.24 pairs with 2.11.0.
RUN python3 -m venv /opt/torch && /opt/torch/bin/pip install --no-cache-dir torch==2.11.0
ENV LIBTORCH_USE_PYTORCH=1 PATH=/opt/torch/bin:$PATH
WORKDIR /src
COPY . .
RUN cargo build --release --locked && cp target/release/iscp /usr/local/bin/iscp

FROM python:3.11-slim-bookworm
# The same Python minor as the build stage's venv, so the copied torch package imports cleanly.
COPY --from=build /opt/torch /opt/torch
COPY --from=build /usr/local/bin/iscp /usr/local/bin/iscp
RUN ln -sf /usr/local/bin/python3 /opt/torch/bin/python3
ENV LD_LIBRARY_PATH=/opt/torch/lib/python3.11/site-packages/torch/lib
# Specs name data relative to /work (./data and ./experiments are mounted there).
WORKDIR /work
ENTRYPOINT ["iscp"]
CMD ["--help"]
