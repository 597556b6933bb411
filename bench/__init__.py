"""Benchmark harness of `make bench` (`bench/README.md`: method, how to run, figures, past answers).

`run` runs the `phases` of a `plan` through a `session` of pinned child processes (`procs`): the `responder`
(upstream), bridges, the baselines (`direct`, `sdk_client`), grpc.aio alone (`rawgrpc`) and the load
generators (`h2load`, `streams`); `report` and `plots` turn the measurements into figures.
"""
