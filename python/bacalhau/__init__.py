"""bacalhau-py: a compute-over-data network with a Python control plane and a Rust core."""
