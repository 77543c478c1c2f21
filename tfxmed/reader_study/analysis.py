"""The study's analysis: `python -m tfxmed study results study.db`.

- Mean human trust score (HTS, 1–5) per method, with a percentile bootstrap 95% CI over cases (each
  case's mean over its readers; `tfxmed.metrics.statistics.bootstrap_ci`).
- Agreement: Cohen's κ (unweighted and quadratic-weighted) for each pair of readers on the
  explanations both rated, and Fleiss' κ on the explanations every reader rated (three readers or more).
- HTS against localisation: Spearman's ρ between a case's mean HTS and the map's IoU, and its
  point-biserial twin with the pointing-game hit, on the cases with a lesion mask, per method.

Writes `ratings.csv` (one row per current rating), `results.json` and `reader_study.html` (a
`<section>` the run report includes when it finds it in RUN/eval/) into the output folder, and a copy
of the section into the run's eval folder when the run is still there.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import json
import os

import numpy as np
from scipy import stats

from tfxmed.metrics.agreement import category_counts, cohen_kappas, fleiss_kappa
from tfxmed.metrics.statistics import bootstrap_ci
from tfxmed.reader_study import db
from tfxmed.storage import write_json_atomic, write_text_atomic

__all__ = ["SECTION_FILE", "load_ratings", "analyse", "write_results"]

SECTION_FILE = "reader_study.html"  # in the results folder and in RUN/eval/, where the report looks
COLUMNS = ("reader", "case", "method", "trust", "points_at_finding", "comment", "created", "updated", "revision",
           "outcome", "iou", "pointing_game")


def load_ratings(connection) -> list[dict]:
    """Every current rating, with its reader's name, the case's outcome and the map's localisation scores."""
    rows = connection.execute(
        """SELECT rd.name AS reader, r.case_id AS "case", r.method, r.trust, r.points_at_finding, r.comment,
                  r.created, r.updated, r.revision, c.outcome, m.iou, m.pointing_game
           FROM ratings r JOIN readers rd ON rd.reader_id = r.reader_id JOIN cases c ON c.case_id = r.case_id
           JOIN maps m ON m.case_id = r.case_id AND m.method = r.method ORDER BY rd.name, r.case_id, r.method""")
    return [dict(row) for row in rows]


def _mean(_labels, values) -> float:
    return float(np.mean(values))


def _correlation(x: list, y: list) -> dict:
    """Spearman's ρ (and p) of paired values, None where fewer than 3 pairs or a constant side."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"rho": None, "p": None, "cases": int(len(x))}
    result = stats.spearmanr(x, y)
    return {"rho": float(result.statistic), "p": float(result.pvalue), "cases": int(len(x))}


def _per_method(ratings: list[dict], method: str, resamples: int) -> dict:
    mine = [r for r in ratings if r["method"] == method]
    by_case: dict[str, list[int]] = {}
    for r in mine:
        by_case.setdefault(r["case"], []).append(r["trust"])
    case_means = np.array([np.mean(v) for v in by_case.values()])
    scores = {r["case"]: (r["iou"], r["pointing_game"]) for r in mine}
    masked = [case for case in by_case if scores[case][0] is not None or scores[case][1] is not None]
    hits = [case for case in masked if scores[case][1] is not None]
    with_iou = [case for case in masked if scores[case][0] is not None]
    return {
        "ratings": len(mine), "cases": len(by_case),
        "hts": bootstrap_ci(_mean, case_means, case_means, resamples=resamples) if len(case_means) else None,
        "hts_vs_iou": _correlation([np.mean(by_case[c]) for c in with_iou], [scores[c][0] for c in with_iou]),
        "hts_vs_pointing_game": _correlation([np.mean(by_case[c]) for c in hits], [scores[c][1] for c in hits]),
        "mean_iou": float(np.mean([scores[c][0] for c in with_iou])) if with_iou else None,
        "pointing_game": float(np.mean([scores[c][1] for c in hits])) if hits else None,
    }


def analyse(ratings: list[dict], methods: list[str], resamples: int = 1000) -> dict:
    """The analysis of `ratings` (from `load_ratings`) as a JSON-safe dict."""
    readers = sorted({r["reader"] for r in ratings})
    table = {(r["reader"], r["case"], r["method"]): r["trust"] for r in ratings}
    items = sorted({(r["case"], r["method"]) for r in ratings})
    pairs = []
    for a, b in itertools.combinations(readers, 2):
        shared = [item for item in items if (a, *item) in table and (b, *item) in table]
        kappas = cohen_kappas([table[(a, *i)] for i in shared], [table[(b, *i)] for i in shared], db.TRUST_SCALE)
        pairs.append({"readers": [a, b], **kappas})
    fleiss = None
    if len(readers) >= 3:
        complete = [item for item in items if all((reader, *item) in table for reader in readers)]
        if complete:
            counts = category_counts(np.array([[table[(r, *i)] for r in readers] for i in complete]), db.TRUST_SCALE)
            fleiss = {"readers": len(readers), "items": len(complete), "kappa": fleiss_kappa(counts)}
    return {"readers": readers, "ratings": len(ratings), "scale": list(db.TRUST_SCALE),
            "methods": {method: _per_method(ratings, method, resamples) for method in methods},
            "cohen_kappa": pairs, "fleiss_kappa": fleiss}


def _csv_safe(value):
    """Text a spreadsheet would run as a formula (=, +, -, @) is prefixed with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _number(value, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.{digits}f}"


def section_html(result: dict) -> str:
    """The analysis as one `<section id="reader-study">` for the run report."""
    def row(cells):
        return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"

    def head(cells):
        return "<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells) + "</tr>"

    methods = [head(["method", "ratings", "cases", "mean HTS", "95% CI", "ρ(HTS, IoU)", "ρ(HTS, pointing)",
                     "mean IoU", "pointing game"])]
    for name, m in result["methods"].items():
        hts = m["hts"] or {}
        methods.append(row([name, m["ratings"], m["cases"], _number(hts.get("estimate")),
                            f"{_number(hts.get('low'))}–{_number(hts.get('high'))}", _number(m["hts_vs_iou"]["rho"]),
                            _number(m["hts_vs_pointing_game"]["rho"]), _number(m["mean_iou"], 3),
                            _number(m["pointing_game"], 3)]))
    kappas = [head(["readers", "items", "Cohen's κ", "quadratic-weighted κ"])]
    kappas += [row([" · ".join(p["readers"]), p["items"], _number(p["unweighted"]), _number(p["quadratic"])])
               for p in result["cohen_kappa"]]
    fleiss = result["fleiss_kappa"]
    fleiss_text = (f"Fleiss' κ over {fleiss['readers']} readers on {fleiss['items']} explanations all of them rated: "
                   f"{_number(fleiss['kappa'])}." if fleiss else "Fleiss' κ needs three readers or more.")
    return ('<section id="reader-study"><h2>Reader study</h2>'
            f'<p class="note">{len(result["readers"])} readers, {result["ratings"]} ratings of trust (1–5), methods '
            "blinded and in random order. CI: bootstrap over cases (each case's mean over readers); ρ: Spearman, on "
            f"cases with a lesion mask.</p><table id=\"reader-study-methods\">{''.join(methods)}</table>"
            f"<table id=\"reader-study-kappa\">{''.join(kappas)}</table><p>{html.escape(fleiss_text)}</p></section>")


def write_results(study: str, out: str | None = None, resamples: int = 1000) -> dict:
    """Analyses study database `study`; writes ratings.csv, results.json and the HTML section; returns paths."""
    if not os.path.exists(study):
        raise FileNotFoundError(f"study database '{study}' not found")
    connection = db.connect(study)
    try:
        ratings = load_ratings(connection)
        methods, run_dir = json.loads(db.meta(connection, "methods")), db.meta(connection, "run_dir")
    finally:
        connection.close()
    result = analyse(ratings, methods, resamples)
    out = out or os.path.splitext(os.path.abspath(study))[0] + "_results"
    os.makedirs(out, exist_ok=True)
    stream = io.StringIO()
    writer = csv.DictWriter(stream, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: _csv_safe(r[key]) for key in COLUMNS} for r in ratings)
    paths = {"csv": os.path.join(out, "ratings.csv"), "json": os.path.join(out, "results.json"),
             "html": os.path.join(out, SECTION_FILE)}
    write_text_atomic(stream.getvalue(), paths["csv"])
    write_json_atomic(result, paths["json"])
    section = section_html(result)
    write_text_atomic(section, paths["html"])
    if run_dir and os.path.isdir(run_dir):  # the run report includes it from RUN/eval/
        eval_dir = os.path.join(run_dir, "eval")
        os.makedirs(eval_dir, exist_ok=True)
        paths["report_section"] = os.path.join(eval_dir, SECTION_FILE)
        write_text_atomic(section, paths["report_section"])
    summary = {name: (m["hts"] or {}).get("estimate") for name, m in result["methods"].items()}
    return {**paths, "readers": len(result["readers"]), "ratings": result["ratings"], "mean_hts": summary}
