"""What an example printed: one JSON object per line, each a fact it observed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExampleRun:
    """The facts one example printed, one JSON object per line, in order."""

    language: str
    facts: list[dict[str, Any]]

    def steps(self, step: str) -> list[dict[str, Any]]:
        """Every fact of this step, in order."""
        return [fact for fact in self.facts if fact["step"] == step]

    def one(self, step: str, **match: Any) -> dict[str, Any]:
        """The only fact of this step whose fields equal `match`."""
        found = [f for f in self.steps(step) if all(f.get(k) == v for k, v in match.items())]
        assert len(found) == 1, f"{self.language}: expected one {step} {match}, got {found}"
        return found[0]

    def events(self, stream_pass: str | None = None) -> list[dict[str, Any]]:
        """The events received, in order of arrival; of one pass (`first` or `resumed`) when given."""
        return [e for e in self.steps("event") if stream_pass is None or e["pass"] == stream_pass]
