"""`Network HTTP` for jobs: domain allow-lists (`domains`) and the filtering HTTP/HTTPS proxy a
compute node runs for each such execution (`proxy`). The docker engine wires them to an
internal Docker network (`bacalhau.executors.docker_http`)."""
