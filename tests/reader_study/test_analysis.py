"""The study's analysis (`tfxmed.reader_study.analysis`) on hand-made ratings: mean HTS with CIs, κ
equal to scikit-learn's and to Fleiss' formula, HTS against IoU, and the files `results` writes."""

import csv
import json
import os

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from tfxmed.metrics.agreement import category_counts, fleiss_kappa
from tfxmed.reader_study import db
from tfxmed.reader_study.analysis import SECTION_FILE, analyse, write_results

TRUST = {  # reader → trust of (case, method) for cases c0..c5 and methods gradcam, ig
    "ann": [5, 4, 3, 2, 1, 5, 4, 4, 2, 2, 1, 3],
    "bob": [5, 4, 2, 2, 1, 4, 4, 5, 2, 1, 1, 3],
    "cy": [4, 4, 3, 1, 2, 5, 3, 4, 3, 2, 1, 2],
}
IOU = {"gradcam": [0.9, 0.7, 0.5, 0.3, 0.1, None], "ig": [0.8, 0.6, 0.4, 0.2, 0.1, 0.0]}


def _ratings(readers=("ann", "bob", "cy")) -> list[dict]:
    rows = []
    for reader in readers:
        for k, trust in enumerate(TRUST[reader]):
            case, method = f"c{k // 2}", ("gradcam", "ig")[k % 2]
            score = IOU[method][k // 2]
            rows.append({"reader": reader, "case": case, "method": method, "trust": trust,
                         "iou": score, "pointing_game": None if score is None else float(score > 0.35)})
    return rows


def test_kappas_are_scikit_learns_and_fleiss_formula():
    result = analyse(_ratings(), ["gradcam", "ig"], resamples=200)
    assert result["readers"] == ["ann", "bob", "cy"] and result["ratings"] == 36
    for pair in result["cohen_kappa"]:
        a, b = (TRUST[name] for name in pair["readers"])
        assert pair["items"] == 12
        assert pair["unweighted"] == pytest.approx(cohen_kappa_score(a, b, labels=[1, 2, 3, 4, 5]))
        assert pair["quadratic"] == pytest.approx(cohen_kappa_score(a, b, labels=[1, 2, 3, 4, 5], weights="quadratic"))
    table = category_counts(np.array([TRUST["ann"], TRUST["bob"], TRUST["cy"]]).T, [1, 2, 3, 4, 5])
    assert result["fleiss_kappa"] == {"readers": 3, "items": 12, "kappa": pytest.approx(fleiss_kappa(table))}
    two = analyse(_ratings(("ann", "bob")), ["gradcam", "ig"], resamples=50)
    assert two["fleiss_kappa"] is None and len(two["cohen_kappa"]) == 1


def test_perfect_agreement_gives_kappa_one():
    rows = [dict(r, reader=name) for name in ("ann", "bob") for r in _ratings(("ann",))]
    pair = analyse(rows, ["gradcam", "ig"], resamples=50)["cohen_kappa"][0]
    assert pair["unweighted"] == pytest.approx(1.0) and pair["quadratic"] == pytest.approx(1.0)


def test_mean_hts_per_method_with_a_case_bootstrap_and_its_correlation_with_localisation():
    result = analyse(_ratings(), ["gradcam", "ig"], resamples=500)
    gradcam = result["methods"]["gradcam"]
    case_means = [np.mean([TRUST[r][2 * c] for r in TRUST]) for c in range(6)]
    assert gradcam["ratings"] == 18 and gradcam["cases"] == 6
    assert gradcam["hts"]["estimate"] == pytest.approx(np.mean(case_means))
    assert gradcam["hts"]["low"] <= gradcam["hts"]["estimate"] <= gradcam["hts"]["high"]
    expected = stats.spearmanr(case_means[:5], IOU["gradcam"][:5]).statistic  # case 5 has no mask
    assert gradcam["hts_vs_iou"]["rho"] == pytest.approx(expected) and gradcam["hts_vs_iou"]["cases"] == 5
    assert gradcam["mean_iou"] == pytest.approx(0.5) and gradcam["pointing_game"] == pytest.approx(0.6)
    assert gradcam["hts_vs_pointing_game"]["cases"] == 5
    ig_means = [np.mean([TRUST[r][2 * c + 1] for r in TRUST]) for c in range(6)]
    assert result["methods"]["ig"]["hts_vs_iou"]["rho"] == pytest.approx(stats.spearmanr(ig_means, IOU["ig"]).statistic)


def test_results_writes_the_csv_json_and_report_section(synthetic, tmp_path):
    from tests.reader_study.test_server import _rate, _signed_in
    from tfxmed.reader_study.server import create_app

    app = create_app(synthetic)
    clients = [_signed_in(app, synthetic, name) for name in ("ann", "bob")]
    for k, client in enumerate(clients):
        for position in range(6):
            _rate(client, position, 1 + (position + k) % 5, comment="=HYPERLINK(\"x\")" if position == 0 else "ok")
    paths = write_results(synthetic, str(tmp_path / "out"))
    assert (paths["readers"], paths["ratings"]) == (2, 12) and "report_section" not in paths  # no run folder
    rows = list(csv.DictReader(open(paths["csv"], encoding="utf-8")))
    assert len(rows) == 12 and {r["reader"] for r in rows} == {"ann", "bob"}
    assert all(not r["comment"].startswith("=") for r in rows)  # no spreadsheet formula
    saved = json.load(open(paths["json"], encoding="utf-8"))
    assert set(saved["methods"]) == {"gradcam", "ig", "fusion"} and len(saved["cohen_kappa"]) == 1
    section = open(paths["html"], encoding="utf-8").read()
    assert section.startswith('<section id="reader-study">') and "Cohen" in section
    assert os.path.basename(paths["html"]) == SECTION_FILE
    with pytest.raises(FileNotFoundError, match="not found"):
        write_results(str(tmp_path / "missing.db"))
    connection = db.connect(synthetic)
    assert connection.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 12
