"""xpander-bridge: a gRPC service in front of the xpander.ai agent platform."""

__version__ = "0.1.0"
