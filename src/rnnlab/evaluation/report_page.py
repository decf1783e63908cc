"""The page builder behind :mod:`rnnlab.evaluation.report`: HTML and Markdown written side by
side, the stylesheet, escaping, and a :class:`Scope` (the runs one part of the page shows).

No external CSS, JS or fonts: the page is one file plus its images under ``report_files/``.
Laid out for a 1280-px screen and a 400-px phone without horizontal page scrolling: figures
flow in a two-column grid that falls to one column (wide ones span the row; images never
exceed their box), tables scroll inside their own box, long values wrap.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .report_data import RunData

ASSETS = "report_files"
CSS = """
:root{--fg:#1f2933;--muted:#66727f;--line:#e4e7eb;--soft:#f6f8fa;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:var(--fg);
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 32px 72px}
h1{font-size:26px;margin:0 0 4px;letter-spacing:-.01em}
h2{font-size:20px;margin:44px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:14px;margin:20px 0 8px;color:var(--muted);font-weight:600;text-transform:uppercase;
 letter-spacing:.03em}
section{margin-bottom:8px}
.meta{color:var(--muted);font-size:13px;margin:0 0 14px}
nav{margin:10px 0 0;font-size:14px;display:flex;flex-wrap:wrap;gap:4px 18px}
nav a{color:var(--accent);text-decoration:none}
nav a:hover{text-decoration:underline}
nav.toc{display:block}
nav.toc ol{margin:6px 0 0;padding-left:22px}
nav.toc li{margin:3px 0}
nav.toc .runs{color:var(--muted);font-size:13px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13.5px;max-width:100%}
th,td{border-bottom:1px solid var(--line);padding:4px 12px 4px 0;text-align:left;
 vertical-align:top}
th{font-weight:600;color:#374151}
thead th{border-bottom:2px solid var(--line)}
th.num,td.num{font-variant-numeric:tabular-nums;text-align:right;white-space:nowrap}
td.num+td.num,th.num+th.num{padding-left:12px}
td code,th code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
 overflow-wrap:anywhere}
table.cfg{width:100%;table-layout:fixed}
table.cfg td:first-child{width:30%}
.best{color:var(--muted);font-size:11.5px;font-weight:400}
.win{font-weight:700;color:#047857}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(440px,100%),1fr));gap:14px}
.grid .wide{grid-column:1/-1}
figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:10px;background:#fff;
 display:flex;flex-direction:column;align-items:center;justify-content:space-between}
figure img{display:block;max-width:100%;max-height:640px;height:auto;width:auto;
 object-fit:contain}
img.px{image-rendering:pixelated}
figcaption{font-size:12.5px;color:var(--muted);margin-top:6px;align-self:stretch;
 overflow-wrap:anywhere}
figcaption b{color:var(--fg);font-weight:600}
details{border:1px solid var(--line);border-radius:8px;padding:6px 12px;margin:8px 0}
summary{cursor:pointer;font-weight:600;font-size:14px}
.pair{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(440px,100%),1fr));
 gap:0 14px}
.banner{background:#fef3c7;border:1px solid #f59e0b;color:#78350f;border-radius:8px;
 padding:10px 14px;font-weight:600;margin:12px 0}
details.epochs{margin:8px 0 0;align-self:stretch;padding:4px 8px}
details.epochs summary{font-size:12.5px;font-weight:500;color:var(--muted)}
.strip{display:flex;flex-wrap:wrap;gap:8px;margin-top:6px}
.strip figure{border:0;padding:0;flex:0 1 auto}
.strip img{image-rendering:pixelated;max-width:100%;height:auto}
.strip figcaption{text-align:center;margin-top:2px}
@media (max-width:600px){main{padding:16px 12px 48px}h1{font-size:21px}
 table{font-size:12.5px}figure{padding:6px}pre.note{white-space:pre;overflow-wrap:normal}}
pre{background:var(--soft);padding:10px 12px;border-radius:6px;overflow:auto;font-size:12.5px;
 line-height:1.4;margin:8px 0}
pre.note{white-space:pre-wrap;overflow-wrap:anywhere;border-left:3px solid var(--accent)}
.notes li{color:#92400e}
"""


def esc(value: object) -> str:
    """HTML-escape anything read from disk (quotes too: it may land in an attribute)."""
    return html.escape(str(value), quote=True)


def md(value: object) -> str:
    """Markdown-escape one line of text (HTML-escaped first: Markdown allows raw HTML)."""
    text = html.escape(str(value), quote=False).replace("\n", " ")
    return re.sub(r"([\\`*_\[\]|#])", r"\\\1", text)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "x"


@dataclass
class Scope:
    """Runs shown together: the whole page (``level`` 2) or one group's section (level 3)."""

    runs: list[RunData]
    level: int = 2
    prefix: str = ""  # for anchors and plot file names: unique per scope


class Page:
    """Sections collected as HTML and Markdown side by side."""

    def __init__(self, out: Path, runs: list[RunData]):
        self.out, self.runs = out, runs
        self.html: list[str] = []
        self.md: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self.slot = {id(r): f"{i}-{slug(r.name)}" for i, r in enumerate(runs)}
        # folders are shown relative to the runs' common parent (named once, in the header)
        resolved = [r.path.resolve() for r in runs]
        common = Path(os.path.commonpath(resolved)) if runs else Path.cwd()
        self.root = common.parent if common in resolved else common

    def heading(self, scope: Scope, anchor: str, title: str) -> None:
        anchor = scope.prefix + anchor
        if scope.level == 2:
            self.toc.append((anchor, title))
        tag = f"h{scope.level}"
        self.html.append(f'<{tag} id="{esc(anchor)}">{esc(title)}</{tag}>')
        self.md.append(f'\n<a id="{esc(anchor)}"></a>\n\n{"#" * scope.level} {md(title)}\n')

    def rel(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    def figure(self, rel: str, caption: str, size: tuple[int, int] | None = None,
               who: str | None = None) -> str:  # fmt: skip
        """One image with a one-line caption (``who``: the run, in bold). Small pixel images
        (sample grids of 8x8 digits) are scaled up whole-pixel; very wide ones span the row."""
        attrs, cls, wide = "", "", False
        if size is not None:
            w, h = size
            scale = max(1, min(8, 240 // w)) if w < 240 else 1
            attrs = f' width="{w * scale}" height="{h * scale}"'
            cls = ' class="px"' if scale > 1 else ""
            wide = w >= 2.4 * h and w * scale > 600
        alt = f"{who}: {caption}" if who else caption
        lead = f"<b>{esc(who)}</b> · " if who else ""
        self.md.append(f"![{md(alt)}]({rel})\n")
        return (
            f'<figure{" class=wide" if wide else ""}><img src="{esc(rel)}" alt="{esc(alt)}"'
            f"{attrs}{cls}><figcaption>{lead}{esc(caption)}</figcaption></figure>"
        )

    def grid(self, figures: list[str]) -> None:
        if figures:
            self.html.append(f'<div class="grid">{"".join(figures)}</div>')

    def table(self, header: list[str], rows: list[list[str]], md_rows: list[list[str]], *,
              numeric_from: int = 1, cls: str = "") -> None:  # fmt: skip
        """``rows`` are ready-made ``<td>`` cells; ``md_rows`` plain (already escaped) text.
        Header cells from ``numeric_from`` on are right-aligned like their numbers."""
        head = "".join(
            f"<th{' class=num' if i >= numeric_from else ''}>{esc(h)}</th>"
            for i, h in enumerate(header)
        )
        body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
        table_cls = f' class="{cls}"' if cls else ""
        self.html.append(
            f'<div class="scroll"><table{table_cls}><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>"
        )
        self.md.append("| " + " | ".join(md(h) for h in header) + " |")
        self.md.append("|" + "---|" * len(header))
        self.md.extend("| " + " | ".join(r) + " |" for r in md_rows)
        self.md.append("")

    def pre(self, text: str, cls: str = "") -> None:
        self.html.append(f"<pre{f' class={cls}' if cls else ''}>{esc(text)}</pre>")
        self.md.append(f"<pre>{html.escape(text)}</pre>\n")
