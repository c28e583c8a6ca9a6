"""The `bacalhau` command line (click): `main` (root group, global options, error mapping),
`job`, `wasm`, `node`, `agent`, `serve` command modules; `spec` (job specs from files and
flags), `run` (submit-and-watch, job get), `progress` (live event display), `results`
(download + merge), `output` (tables, JSON/YAML). Commands talk to nodes only through
`bacalhau.api.client`."""
