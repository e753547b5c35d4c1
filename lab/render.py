"""One renderer for the lab's reports: a ``Document`` (title, sections of blocks, the JSON
data) written as a self-contained HTML page, a Markdown summary and a JSON file.

A block says what it is (a paragraph, a table, a chart, ...) and, where it belongs to one
format only, which (``only="html"`` or ``"md"``); a section appears in a format when one of
its blocks does. Tables are formatted once (``fmt_table``: percentages, two decimals) for
both text formats; the JSON data holds ``Records`` (a table as a list of row dicts) and plain
values.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

PCT = ("total_return", "cagr", "max_drawdown", "win_rate", "exposure", "peak_to_trough",
       "drawdown_diff")
Format = Literal["html", "md"]


def pyplot():
    """matplotlib without a display (PNG files only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, out: Path) -> Path:
    """Lay out, write the PNG and free the figure."""
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    pyplot().close(fig)
    return out


def fmt_table(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as text: the ``PCT`` columns (fractions) as ``12.34 %``, other float columns
    with two decimals, NaN as empty."""
    out = df.copy()
    for col in out.columns:
        if col in PCT:
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v * 100:.2f} %")
        elif out[col].dtype.kind == "f":
            out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    return out


def md_table(df: pd.DataFrame) -> str:
    """``df`` (formatted by ``fmt_table``) as a Markdown table."""
    df = fmt_table(df)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.to_numpy()]
    return "\n".join(lines)


def img(path: Path) -> str:
    """The PNG at ``path`` inlined as an HTML image (the page stays self-contained)."""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{path.stem}" src="data:image/png;base64,{data}">'


@dataclass
class Text:
    """A paragraph: escaped in HTML, as is in Markdown."""

    text: str
    only: Format | None = None

    def html(self, out: Path) -> str:
        return f"<p>{html.escape(self.text)}</p>"

    def md(self) -> list[str]:
        return [self.text]


@dataclass
class Html:
    """Markup for the HTML page only (prose with ``<code>``, entities)."""

    markup: str
    only: Format | None = "html"

    def html(self, out: Path) -> str:
        return self.markup

    def md(self) -> list[str]:
        return []


@dataclass
class Bullets:
    """A list of statements."""

    items: list[str]
    only: Format | None = None

    def html(self, out: Path) -> str:
        return "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in self.items) + "</ul>"

    def md(self) -> list[str]:
        return [f"- {s}" for s in self.items]


@dataclass
class Table:
    """A table, formatted by ``fmt_table`` unless ``formatted`` is False. Empty: the
    ``html_empty`` paragraph (markup) and the ``md_empty`` line instead, where given."""

    df: pd.DataFrame
    formatted: bool = True
    html_empty: str | None = None
    md_empty: str | None = None
    only: Format | None = None

    def html(self, out: Path) -> str:
        if self.df.empty and self.html_empty is not None:
            return f"<p>{self.html_empty}</p>"
        return (fmt_table(self.df) if self.formatted else self.df).to_html(index=False)

    def md(self) -> list[str]:
        if self.df.empty and self.md_empty is not None:
            return [self.md_empty]
        return [md_table(self.df)]


@dataclass
class Heading:
    """A sub-heading (``<h3>``) of the HTML page."""

    text: str
    only: Format | None = "html"

    def html(self, out: Path) -> str:
        return f"<h3>{html.escape(self.text)}</h3>"

    def md(self) -> list[str]:
        return []


@dataclass
class Pre:
    """Preformatted text (a tool's output) on the HTML page."""

    text: str
    only: Format | None = "html"

    def html(self, out: Path) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"

    def md(self) -> list[str]:
        return []


@dataclass
class Chart:
    """A PNG chart: ``draw(path)`` writes it to ``<out>/<file>`` when the page is rendered,
    and the page inlines it."""

    file: str
    draw: Callable[[Path], Path]
    only: Format | None = "html"

    def html(self, out: Path) -> str:
        return img(self.draw(out / self.file))

    def md(self) -> list[str]:
        return []


Block = Text | Html | Bullets | Table | Heading | Pre | Chart


@dataclass
class Section:
    """A heading and its blocks; ``md_title``: its Markdown heading (``##``), None for none
    (its blocks follow the previous section's)."""

    title: str
    blocks: list[Block]
    md_title: str | None = None

    def blocks_for(self, fmt: Format) -> list[Block]:
        return [b for b in self.blocks if b.only in (None, fmt)]


@dataclass
class Records:
    """A table in the JSON data: one dict per row; NaN as null unless ``nan_as_null`` is
    False (then as Python's JSON writes it, ``NaN``)."""

    df: pd.DataFrame
    nan_as_null: bool = True

    def plain(self) -> list[dict[str, Any]]:
        df = self.df.replace({np.nan: None}) if self.nan_as_null else self.df
        return df.to_dict(orient="records")


@dataclass
class Document:
    """A report: ``title``, ``sections`` (the HTML page and the Markdown summary) and
    ``data`` (the JSON file: plain values, ``Records`` and dicts of them)."""

    title: str
    sections: list[Section]
    data: dict[str, Any] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """``value`` with every ``Records`` in it (also inside dicts and lists) as rows."""
    if isinstance(value, Records):
        return value.plain()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


STYLE = """body{font-family:sans-serif;max-width:1150px;margin:auto;padding:1em}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{background:#f3f3f3}pre{background:#f7f7f7;padding:.5em;overflow:auto;
font-size:11px}img{max-width:100%}"""


def to_html(doc: Document, out: Path) -> str:
    """The self-contained HTML page; charts are drawn into ``out`` on the way."""
    parts = []
    for section in doc.sections:
        blocks = section.blocks_for("html")
        if blocks:
            content = "".join(b.html(out) for b in blocks)
            parts.append(f"<h2>{html.escape(section.title)}</h2>\n{content}")
    body = "\n".join(parts)
    title = html.escape(doc.title)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{STYLE}</style></head>
<body><h1 id="title">{title}</h1>
{body}
</body></html>"""


def to_markdown(doc: Document) -> str:
    """The Markdown summary: the title, then each section's Markdown heading and blocks, a
    blank line after each."""
    lines = [f"# {doc.title}", ""]
    for section in doc.sections:
        blocks = section.blocks_for("md")
        if not blocks:
            continue
        if section.md_title is not None:
            lines += [f"## {section.md_title}", ""]
        for block in blocks:
            lines += [*block.md(), ""]
    return "\n".join(lines)


def to_json(doc: Document) -> str:
    """The JSON file: ``doc.data`` as plain values (unknown types as their ``str``)."""
    return json.dumps(plain(doc.data), indent=2, default=str)


@dataclass(frozen=True)
class Files:
    """The file names a document is written to under its folder (None: not written)."""

    html: str = "report.html"
    md: str | None = "summary.md"
    json: str | None = "metrics.json"


def render(doc: Document, out: Path, files: Files = Files()) -> dict[str, Path]:
    """Write ``doc`` under ``out`` (charts, HTML page, Markdown summary, JSON data); returns
    the written files by format."""
    out.mkdir(parents=True, exist_ok=True)
    written = {"html": out / files.html}
    written["html"].write_text(to_html(doc, out))
    if files.md:
        written["md"] = out / files.md
        written["md"].write_text(to_markdown(doc))
    if files.json:
        written["json"] = out / files.json
        written["json"].write_text(to_json(doc))
    return written
