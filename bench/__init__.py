"""Benchmark harness: measures the bridge against a direct HTTP client and the official SDK (`make bench`).

Modules, in the order a run uses them: `machine` (cores, load, memory of processes), `procs` (pinned child
processes), `responder` (the fast upstream replaying the local platform's responses), `frames` (prebuilt
gRPC request bodies), `h2load` (the load generator and its per-request log), `direct` / `sdk_client` (the
baselines), `rawgrpc` (the grpc.aio ceiling), `streams` (a Python gRPC client for event latency and open
streams), `levers` (micro-benchmarks), `run` (the orchestrator) and `report` (JSON, markdown and plots).
"""
