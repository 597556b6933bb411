"""Running the bridge in production: metrics, tracing, logs, TLS, caller auth, limits, processes, probes.

Each module is one concern; `bridge.ops.runtime.Operations` wires them into a server. Nothing here imports the
servicer or the platform client: they are handed what they need (interceptors, an HTTP transport, a request-id
context variable).
"""
