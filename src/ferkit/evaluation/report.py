"""Evaluation reports: `report.md` (tables for a README or paper) and `report.html` (one
self-contained page, figures embedded as data URIs, opens offline)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from ferkit.core.atomic import write_text
from ferkit.evaluation import robustness
from ferkit.evaluation.metrics import format_p

HEADLINE = (
    ("accuracy", "accuracy", True),
    ("balanced_accuracy", "balanced accuracy", True),
    ("macro_f1", "macro-F1", True),
    ("ece", "expected calibration error (15 bins)", True),
    ("nll", "negative log-likelihood (nats)", False),
    ("faces_per_s", "faces/s (ONNX Runtime, this machine)", False),
)


def _fmt(value: float, percent: bool) -> str:
    return f"{100 * value:.2f}%" if percent else f"{value:,.3f}" if value < 100 else f"{value:,.0f}"


def headline_rows(m: dict[str, Any]) -> list[tuple[str, str]]:
    return [(label, _fmt(m[key], pct)) for key, label, pct in HEADLINE]


def per_class_rows(m: dict[str, Any]) -> list[list[str]]:
    rows = [
        [name, *(f"{c[k]:.3f}" for k in ("precision", "recall", "f1")), str(c["support"])]
        for name, c in m["per_class"].items()
    ]
    avg = {k: sum(c[k] for c in m["per_class"].values()) / len(rows) for k in ("precision",
           "recall", "f1")}  # fmt: skip
    rows.append(["macro", *(f"{avg[k]:.3f}" for k in avg), str(m["n"])])
    return rows


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _model_line(m: dict[str, Any]) -> str:
    model = m["model"]
    meta = model["metadata"]
    return (
        f"{model['name']} ({Path(model['path']).name}, {model['bytes'] / 1e6:.2f} MB, "
        f"SHA-256 {model['sha256'][:16]}, flip TTA {meta.get('tta', 'none')})"
    )


def markdown(m: dict[str, Any], figures: dict[str, Path]) -> str:
    cm_rows = [[lab, *map(str, row)] for lab, row in zip(m["labels"], m["confusion_matrix"],
               strict=True)]  # fmt: skip
    parts = [
        f"# Evaluation: {m['model']['name']} on {m['split']} ({m['n']:,} faces)",
        f"Model: {_model_line(m)}.",
        f"Training: {m['model']['metadata'].get('training', 'not recorded')}",
        md_table(["metric", "value"], [list(r) for r in headline_rows(m)]),
        "## Per class",
        md_table(["emotion", "precision", "recall", "F1", "support"], per_class_rows(m)),
        "## Confusion matrix (rows: true, columns: predicted)",
        md_table(["", *m["labels"]], cm_rows),
    ]
    for caption, header, rows in robustness.tables(m["corruptions"]) if "corruptions" in m else ():
        parts += [f"## {caption}", md_table(header, rows)]
    parts += ["## Figures", "\n".join(f"![{name}]({p.name})" for name, p in figures.items())]
    return "\n\n".join(parts) + "\n"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def html_page(m: dict[str, Any], figures: dict[str, Path]) -> str:
    cm_rows = [[lab, *row] for lab, row in zip(m["labels"], m["confusion_matrix"], strict=True)]
    imgs = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{name}</figcaption></figure>'
        for name, p in figures.items()
    )
    title = f"{m['model']['name']} on {m['split']} ({m['n']:,} faces)"
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 10px;text-align:right}td:first-child,th:first-child{text-align:left}"
        "figure{display:inline-block;margin:1em}img{max-width:100%}"
        ".meta{color:#555;font-size:90%}"
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>ferkit evaluation: {html.escape(title)}</title><style>{style}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>"
        f"<p class='meta'>Model: {html.escape(_model_line(m))}<br>"
        f"Training: {html.escape(m['model']['metadata'].get('training', 'not recorded'))}</p>"
        + _html_table(["metric", "value"], [list(r) for r in headline_rows(m)])
        + "<h2>Per class</h2>"
        + _html_table(["emotion", "precision", "recall", "F1", "support"], per_class_rows(m))
        + "<h2>Confusion matrix (rows: true, columns: predicted)</h2>"
        + _html_table(["", *m["labels"]], cm_rows)
        + "".join(
            f"<h2>{html.escape(caption)}</h2>" + _html_table(header, rows)
            for caption, header, rows in (
                robustness.tables(m["corruptions"]) if "corruptions" in m else ()
            )
        )
        + f"<h2>Figures</h2>{imgs}</body></html>\n"
    )


def write_report(out: Path, m: dict[str, Any], figures: dict[str, Path]) -> None:
    write_text(out / "report.md", markdown(m, figures))
    write_text(out / "report.html", html_page(m, figures))


COMPARISON_HEADER = ["model", "accuracy", "macro-F1", "ECE", "NLL", "MB", "faces/s"]
MCNEMAR_HEADER = ["A", "B", "only A right", "only B right", "p-value"]


def comparison_header(c: dict[str, Any]) -> list[str]:
    """COMPARISON_HEADER, with FER-2013-C's mCA when the models were scored on it."""
    return COMPARISON_HEADER + (["mCA"] if "mca" in c["models"][0] else [])


def comparison_rows(c: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    """(model rows, McNemar rows) as strings, for the terminal table and comparison.md."""
    rows = [
        [
            r["model"],
            f"{100 * r['accuracy']:.2f}%",
            f"{100 * r['macro_f1']:.2f}%",
            f"{100 * r['ece']:.2f}%",
            f"{r['nll']:.3f}",
            f"{r['megabytes']:.2f}",
            f"{r['faces_per_s']:,.0f}",
            *([f"{100 * r['mca']:.2f}%"] if "mca" in r else []),
        ]
        for r in c["models"]
    ]
    tests = [
        [p["a"], p["b"], str(p["only_a"]), str(p["only_b"]), format_p(p)] for p in c["mcnemar"]
    ]
    return rows, tests


def comparison_markdown(c: dict[str, Any], split: str) -> str:
    rows, tests = comparison_rows(c)
    return (
        f"# Comparison on {split}\n\n"
        + md_table(comparison_header(c), rows)
        + "\n\n## McNemar's exact test (paired, two-sided)\n\n"
        + md_table(MCNEMAR_HEADER, tests)
        + "\n"
    )
