"""Scrubbing secrets out of text. Pure.

A secret can come back to us cut short: a gateway that refuses a 9 KB header quotes its first few hundred
bytes, and we keep only an excerpt of that. So besides whole secrets, every run of `MIN_RUN` or more characters
that also occurs inside a secret is masked. The n-grams of the secrets are indexed once, so scrubbing costs
time linear in the text, whatever the secrets' length.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MIN_RUN = 8  # shorter fragments are too likely to be ordinary text
MASK = "***"
# A quick first look: any run of MIN_RUN characters holds a whole PROBE-character block that starts at a
# multiple of PROBE (PROBE <= (MIN_RUN + 1) // 2), so text none of whose aligned blocks occurs in a secret
# holds no fragment, and is passed after len(text) / PROBE lookups instead of len(text).
PROBE = MIN_RUN // 2


class Scrubber:
    """Masks the given secrets, and any fragment of `MIN_RUN`+ characters of them, in text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))
        self._grams = {s[i : i + MIN_RUN] for s in self.secrets for i in range(len(s) - MIN_RUN + 1)}
        self._probes = {s[i : i + PROBE] for s in self.secrets for i in range(len(s) - PROBE + 1)}

    def __call__(self, text: str) -> str:
        if not self.secrets:
            return text
        for secret in self.secrets:  # whole secrets first, short ones included
            if secret in text:
                text = text.replace(secret, MASK)
        if not self._grams or len(text) < MIN_RUN:
            return text
        probes = self._probes
        if not any(text[i : i + PROBE] in probes for i in range(0, len(text) - PROBE + 1, PROBE)):
            return text
        hidden = bytearray(len(text))
        found = False
        for i in range(len(text) - MIN_RUN + 1):
            if text[i : i + MIN_RUN] in self._grams:
                hidden[i : i + MIN_RUN] = b"\x01" * MIN_RUN
                found = True
        if not found:
            return text
        out: list[str] = []
        for i, char in enumerate(text):
            if not hidden[i]:
                out.append(char)
            elif i == 0 or not hidden[i - 1]:
                out.append(MASK)
        return "".join(out)


def scrub(text: str, secrets: Iterable[str]) -> str:
    return Scrubber(secrets)(text)


def scrub_tree(value: Any, scrubber: Scrubber) -> Any:
    """`value` with every string in it scrubbed, through mappings, lists and tuples (which become lists)."""
    if isinstance(value, str):
        return scrubber(value)
    if isinstance(value, Mapping):
        return {k: scrub_tree(v, scrubber) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_tree(v, scrubber) for v in value]
    return value
