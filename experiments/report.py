"""One self-contained HTML page of every study run under a folder: tables and figures inline.

    python -m experiments.report runs                 # writes runs/report.html
    python -m experiments.report runs --out all.html

Each run folder (one holding a results.json) becomes a section: its settings, then its report.md rendered
with the figures embedded as base64 PNGs (so the page can be mailed or archived alone), then any figure of the
folder that report.md does not show. Nothing is fetched from the network when the page is opened.
"""
from __future__ import annotations

import argparse
import base64
import html
import json
import mimetypes
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

from experiments import common
from jaxgen.errors import ConfigError, OutputFolderError

SKIPPED_FOLDERS = {".staging", "checkpoints", "models"}
NUMBER = re.compile(r"[-+−]?[\d,]*\.?\d+(e[-+]?\d+)?( ± [\d.]+)?%?|[-+]?inf|nan", re.IGNORECASE)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg"}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1em 2em 4em; color: #1b1b1b; line-height: 1.45; }
h1 { border-bottom: 2px solid #ccc; padding-bottom: .2em; }
section.run { border-top: 3px solid #4a6fa5; margin-top: 3em; padding-top: .5em; }
section.run h1 { font-size: 1.6em; border: none; }
section.run h2 { font-size: 1.25em; margin-top: 1.6em; }
.table { overflow-x: auto; margin: .8em 0; }
table { border-collapse: collapse; font-size: .85em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; white-space: nowrap; }
th { background: #eef2f7; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0; border: 1px solid #eee; }
p img { display: inline-block; max-width: 49%; vertical-align: top; }
p img:only-child { display: block; max-width: 100%; }
code { background: #f4f4f4; padding: 0 .25em; border-radius: 3px; font-size: .9em; word-break: break-all; }
.meta { color: #555; font-size: .9em; }
.missing { color: #b00; }
nav table td { text-align: left; }
"""


@dataclass
class Run:
    folder: Path
    results: dict
    report: str
    title: str
    missing_figures: list[str] = field(default_factory=list)
    embedded_figures: list[str] = field(default_factory=list)


def find_runs(root: Path) -> list[Path]:
    """Folders under `root` (itself included) that hold a results.json, in path order."""
    found = []
    for results in sorted(root.rglob("results.json")):
        relative = results.relative_to(root).parts[:-1]
        if not SKIPPED_FOLDERS.intersection(relative):
            found.append(results.parent)
    return found


def load_run(folder: Path) -> Run:
    try:
        results = json.loads((folder / "results.json").read_text())
    except ValueError as error:
        results = {"unreadable_results": f"{folder / 'results.json'}: {error}"}
    report_path = folder / "report.md"
    report = report_path.read_text() if report_path.exists() else ""
    study = results.get("study") or folder.name
    title = next((line[2:].strip() for line in report.splitlines() if line.startswith("# ")), study)
    return Run(folder, results if isinstance(results, dict) else {}, report, title)


def data_uri(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def render_markdown(run: Run, anchor: str) -> str:
    """report.md as HTML, with its figures embedded and its first heading dropped (the section has it)."""
    md = _markdown()
    text = "\n".join(line for line in run.report.splitlines() if line.strip() != f"# {run.title}")
    tokens = md.parse(text)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":  # ids unique on the page
            token.attrSet("id", f"{anchor}-h{index}")
        if token.type == "td_open" and NUMBER.fullmatch(tokens[index + 1].content.strip()):
            token.attrSet("class", "number")  # numbers right-aligned, words left
        for child in token.children or []:
            if child.type != "image":
                continue
            source = child.attrGet("src") or ""
            path = (run.folder / source).resolve()
            inside = run.folder.resolve() in path.parents
            if inside and path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                child.attrSet("src", data_uri(path))
                child.attrSet("title", source)
                run.embedded_figures.append(source)
            else:  # said in words: the page links nothing outside itself
                run.missing_figures.append(source)
                child.type, child.tag, child.children = "text", "", None
                child.content = f"[missing figure: {source}]"
    rendered = md.renderer.render(tokens, md.options, {})
    return rendered.replace("<table>", '<div class="table"><table>').replace("</table>", "</table></div>")


def settings_table(results: dict) -> str:
    config = results.get("config")
    if not isinstance(config, dict) or not config:
        return ""
    cells = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(common.show_value(v))}</td></tr>"
                    for k, v in config.items())
    return (f'<details><summary>config ({len(config)} settings)</summary><div class="table"><table>'
            f"<tr><th>field</th><th>value</th></tr>{cells}</table></div></details>")


def render_run(run: Run, anchor: str, root: Path) -> str:
    results = run.results
    meta = [f"folder <code>{html.escape(str(run.folder.relative_to(root)) or '.')}</code>"]
    for key, label in (("study", "study"), ("budget", "budget")):
        if results.get(key):
            meta.append(f"{label} <b>{html.escape(str(results[key]))}</b>")
    if isinstance(results.get("runtime_seconds"), (int, float)):
        meta.append(f"runtime {results['runtime_seconds'] / 60:.1f} min")
    if results.get("resumed"):
        meta.append("resumed: " + html.escape(", ".join(
            f"{model} after epoch {where.get('epoch')}" for model, where in results["resumed"].items())))
    body = render_markdown(run, anchor) if run.report else "<p>(no report.md)</p>"
    shown = set(run.embedded_figures)
    extra = [p for p in sorted(run.folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.name not in shown]
    if extra:
        body += "<h2>Other figures in the folder</h2>" + "".join(
            f'<img src="{data_uri(p)}" alt="{html.escape(p.name)}" title="{html.escape(p.name)}">' for p in extra)
        run.embedded_figures.extend(p.name for p in extra)
    missing = ""
    if run.missing_figures:
        missing = (f'<p class="missing">report.md links figures that are not in the folder: '
                   f"{html.escape(', '.join(run.missing_figures))}</p>")
    return (f'<section class="run" id="{anchor}"><h1>{html.escape(run.title)}</h1>'
            f'<p class="meta">{" · ".join(meta)}</p>{settings_table(results)}{missing}{body}</section>')


def build_page(root: Path) -> tuple[str, list[Run]]:
    """(HTML, runs) for every run under `root`."""
    runs = [load_run(folder) for folder in find_runs(root)]
    sections = [render_run(run, f"run-{i}", root) for i, run in enumerate(runs)]
    rows = "".join(
        f'<tr><td><a href="#run-{i}">{html.escape(run.title)}</a></td>'
        f"<td>{html.escape(str(run.results.get('study', '')))}</td>"
        f"<td>{html.escape(str(run.results.get('budget', '')))}</td>"
        f"<td><code>{html.escape(str(run.folder.relative_to(root)))}</code></td>"
        f"<td>{len(run.embedded_figures)}</td></tr>" for i, run in enumerate(runs))
    generated = time.strftime("%Y-%m-%d %H:%M")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>jaxgen studies: {html.escape(str(root))}</title><style>{STYLE}</style></head>
<body><h1>jaxgen studies in <code>{html.escape(str(root))}</code></h1>
<p class="meta">{len(runs)} runs, page generated {generated} by <code>python -m experiments.report</code>.</p>
<nav><div class="table"><table><tr><th>run</th><th>study</th><th>budget</th><th>folder</th><th>figures</th></tr>
{rows}</table></div></nav>
{''.join(sections)}
</body></html>
"""
    return page, runs


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.report", description=__doc__.splitlines()[0])
    parser.add_argument("runs", help="folder holding study runs (each a folder with results.json), e.g. runs")
    parser.add_argument("--out", default=None, help="the HTML file to write (default RUNS/report.html)")
    common.add_debug_flag(parser)
    args = parser.parse_args(argv)
    root = Path(args.runs)
    if not root.is_dir():
        raise ConfigError(f"{args.runs}: no such folder; give the folder the studies wrote into (e.g. runs)")
    out = Path(args.out) if args.out else root / "report.html"
    if out.is_dir():
        raise OutputFolderError(f"--out {out} is a folder; give a file name such as {out / 'report.html'}")
    page, runs = build_page(root)
    if not runs:
        raise ConfigError(f"{args.runs}: no study results here (no results.json in it or its subfolders)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as error:
        raise OutputFolderError(f"--out {out}: cannot write ({error.strerror})") from None
    figures = sum(len(run.embedded_figures) for run in runs)
    print(f"wrote {out}: {len(runs)} runs, {figures} figures, {len(page) / 1e6:.1f} MB")
    for run in runs:
        if run.missing_figures:
            print(f"  {run.folder}: report.md links missing figures {', '.join(run.missing_figures)}")
    return out


if __name__ == "__main__":
    common.entry_point(main)
