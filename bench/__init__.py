"""Benchmark harness: measures the bridge against a direct HTTP client and the official SDK (`make bench`).

Modules, in the order a run uses them: `run` (the orchestrator) with its `plan` (sizes); `machine` (cores,
load, memory of processes) and `procs` (pinned child processes); `capture` and `responder` (the fast upstream
replaying the local platform's responses); `frames` (prebuilt gRPC request bodies) and `h2load` (the load
generator and its per-request log); `direct` and `sdk_client` (the baselines, driven by `loadloop`);
`rawgrpc` (the grpc.aio ceiling); `streams` (a Python gRPC client for event latency and open streams);
`profile` (py-spy); `levers` with `http_clients`, `convert_micro` and `without_module` (micro-benchmarks);
`report` (figures, JSON, markdown and plots).
"""
