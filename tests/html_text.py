"""Parsing the HTML report in tests: text, tags and attributes per top-level svg id."""

from __future__ import annotations

from html.parser import HTMLParser


class SvgText(HTMLParser):
    """Collects text, attributes and tags per top-level svg id."""

    def __init__(self) -> None:
        super().__init__()
        self.svg: str | None = None
        self.text: dict[str, list[str]] = {}
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.elements: dict[str, list[tuple[str, dict[str, str | None]]]] = {}
        self.pre: list[str] = []
        self._in_pre = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        if tag == "svg":
            self.svg = dict(attrs).get("id") or "?"
            self.text.setdefault(self.svg, [])
        elif self.svg:
            self.elements.setdefault(self.svg, []).append((tag, dict(attrs)))
        self._in_pre = self._in_pre or tag == "pre"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.svg = None
        if tag == "pre":
            self._in_pre = False

    def handle_data(self, data: str) -> None:
        if self.svg:
            self.text[self.svg].append(data)
        if self._in_pre:
            self.pre.append(data)

    def svg_text(self, svg_id: str) -> str:
        """All text inside the svg with this id, space-separated."""
        return " ".join(self.text.get(svg_id, []))


def parse_svgs(page: str) -> SvgText:
    """The parsed page."""
    parser = SvgText()
    parser.feed(page)
    return parser
