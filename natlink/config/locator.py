"""Line numbers for config messages: key paths like `mapping[0].external_port` -> the line that set them."""

from __future__ import annotations

import re


class Locator:
    """Maps key paths like `mapping[0].external_port` to line numbers by scanning the TOML text."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        counts: dict[str, int] = {}
        prefix = ""
        for no, line in enumerate(text.splitlines(), 1):
            header = self._HEADER.match(line)
            if header:
                name = header.group(2).replace('"', "").replace("'", "").strip()
                if header.group(1) == "[[":
                    index = counts.get(name, 0)
                    counts[name] = index + 1
                    prefix = f"{name}[{index}]"
                else:
                    prefix = name
                self.lines.setdefault(prefix, no)
                continue
            key = self._KEY.match(line)
            if key:
                name = key.group(1).replace('"', "").replace("'", "")
                self.lines.setdefault(f"{prefix}.{name}" if prefix else name, no)

    def line(self, path: str) -> int:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rsplit(".", 1)[0] if "." in path else ""
        return 0
