"""Prompt directives (`#delay=`, `#chunks=`, `#fail`, `#pause`, `#never`) steer the scripted agents."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MAX_CHUNKS", "MAX_DELAY", "Directives", "parse_directives", "strip_directives"]

# Bounds keep a typo (`#delay=3600000`) from parking a task for weeks or allocating millions of events.
MAX_DELAY = 3600.0
MAX_CHUNKS = 1000

_DELAY = re.compile(r"#delay=(\d+(?:\.\d*)?|\.\d+)")
_CHUNKS = re.compile(r"#chunks=(\d+)")
_FLAG = re.compile(r"#(fail|pause|never)\b")
_ANY = re.compile(r"\s*#(?:delay=(?:\d+(?:\.\d*)?|\.\d+)|chunks=\d+|fail\b|pause\b|never\b)")


@dataclass(frozen=True, slots=True)
class Directives:
    """What a prompt asks of the scripted agent; `None` means "use the default"."""

    delay: float | None = None
    chunks: int | None = None
    fail: bool = False
    pause: bool = False
    never: bool = False


_NONE = Directives()


def parse_directives(prompt: str) -> Directives:
    """Read the directives out of a prompt; text that merely looks similar (`#delay=abc`) is ignored."""
    if "#" not in prompt:
        return _NONE  # the common case, kept cheap: most prompts carry no directive
    delay_match = _DELAY.search(prompt)
    chunks_match = _CHUNKS.search(prompt)
    flags = {match.group(1) for match in _FLAG.finditer(prompt)}
    return Directives(
        delay=min(float(delay_match.group(1)), MAX_DELAY) if delay_match else None,
        chunks=min(max(int(chunks_match.group(1)), 1), MAX_CHUNKS) if chunks_match else None,
        fail="fail" in flags,
        pause="pause" in flags,
        never="never" in flags,
    )


def strip_directives(prompt: str) -> str:
    """The prompt without its directives, as an agent that repeats the prompt should say it."""
    if "#" not in prompt:
        return prompt
    return _ANY.sub("", prompt).strip()
