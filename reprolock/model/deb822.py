"""RFC 822 style paragraphs, as dpkg and apt write them (status, Packages, Release)."""

from __future__ import annotations

from collections.abc import Iterator


def stanzas(text: str) -> Iterator[dict[str, str]]:
    """RFC 822 style paragraphs; continuation lines are folded into their field.

    Linear in the input whatever its shape (a field of a million continuation lines
    is joined once, not grown line by line)."""
    fields: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield {k: "\n".join(v) for k, v in fields.items()}
            fields, last = {}, None
        elif line[0] in " \t" and last is not None:
            last.append(line.strip())
        elif ":" in line:
            key, _, value = line.partition(":")
            last = fields[key.strip()] = [value.strip()]
    if fields:
        yield {k: "\n".join(v) for k, v in fields.items()}
