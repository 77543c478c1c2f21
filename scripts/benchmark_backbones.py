"""Backbones side by side on one MedMNIST `.npz` (issue 14): the generic recipe with each `model.name`, 3 seeds.

    python scripts/benchmark_backbones.py --data ../shared/data/pneumoniamnist.npz \
        [--backbones resnet50_attention densenet121 efficientnetb0 vgg16] [--seeds 0 1 2] \
        [--epochs densenet121=5 vgg16=5] [--set KEY=VALUE ...] [--backbone-set vgg16:train.learning_rate=1e-4 ...]

Each backbone trains `configs/medmnist.yaml` with only `model.name` changed (and, with `--epochs
NAME=N`, N passes over the training split for the large ones instead of the recipe's step budget, with
batch-norm statistics recomputed on `--batchnorm-batches` training batches before each validation: the
JSON says which; `--backbone-set NAME:KEY=VALUE` changes one backbone only), one run per seed, evaluated once on
the test split (`benchmark_medmnist._run_seed`; a finished seed is reused, in `OUT/NAME` or
`OUT/NAME-Npass`, and a seed finished with other overrides is refused). Per backbone: test AUC and
ACC (mean ± sd over seeds), parameters, training seconds and inference ms/image; and the paired tests
of `tfxmed.experiments.compare` against the first backbone (the reference, ResNet50 + CSAM by default):
DeLong and McNemar per seed (Holm-adjusted), and paired t / Wilcoxon across seeds. Prints JSON and
writes `OUT/backbones.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmark_medmnist import _run_seed  # noqa: E402

from tfxmed.metrics.statistics import mean_sd  # noqa: E402

DEFAULT_BACKBONES = ("resnet50_attention", "densenet121", "efficientnetb0", "vgg16")


def _epochs(specs: list[str]) -> dict[str, int]:
    pairs = [spec.partition("=") for spec in specs]
    if any(not name or not separator or not value.isdigit() for name, separator, value in pairs):
        raise SystemExit(f"--epochs: expected NAME=N pairs, got {specs}")
    return {name: int(value) for name, _, value in pairs}


def _backbone_overrides(specs: list[str], backbones: list[str]) -> dict[str, list[str]]:
    """`--backbone-set NAME:KEY=VALUE` → {NAME: [KEY=VALUE, ...]}, for backbones the harness runs."""
    chosen: dict[str, list[str]] = {}
    for spec in specs:
        name, separator, override = spec.partition(":")
        if not separator or "=" not in override or name not in backbones:
            raise SystemExit(f"--backbone-set {spec!r}: expected NAME:KEY=VALUE with NAME one of {backbones}")
        chosen.setdefault(name, []).append(override)
    return chosen


def _efficiency(run_dir: str) -> dict:
    """Parameters and inference ms/image of a run's model, from its evaluation (eval/metrics.json)."""
    with open(os.path.join(run_dir, "eval", "metrics.json"), encoding="utf-8") as stream:
        efficiency = json.load(stream)["efficiency"]
    return {"parameters": efficiency["parameters"], "inference_ms_per_image": efficiency["inference_ms_per_image"]}


def _markdown(table: dict, reference: str) -> str:
    lines = [f"| backbone | test AUC | test ACC | parameters | training s / seed | inference ms / image | "
             f"paired t p (AUC) vs {reference} | DeLong p per seed (Holm) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in table.items():
        auc, acc = row["test_auc"], row["test_acc"]
        delong = ", ".join("–" if p is None else f"{p:.3g}" for p in row.get("delong_p_holm", [])) or "–"
        paired = row.get("paired_auc_t_p")
        notes = ([f"{row['epochs']} epochs"] if row["epochs"] else []) + row["own_overrides"]
        lines.append(f"| {name}{' (' + '; '.join(notes) + ')' if notes else ''} | "
                     f"{auc['mean']:.4f} ± {auc['sd']:.4f} | {acc['mean']:.4f} ± {acc['sd']:.4f} | "
                     f"{row['parameters'] / 1e6:.1f} M | {row['train_seconds']['mean']:.0f} | "
                     f"{row['inference_ms_per_image']:.2f} | {'–' if paired is None else f'{paired:.3g}'} | {delong} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="MedMNIST .npz (e.g. ../shared/data/pneumoniamnist.npz)")
    parser.add_argument("--recipe", default="configs/medmnist.yaml")
    parser.add_argument("--backbones", nargs="+", default=list(DEFAULT_BACKBONES), help="the first is the reference")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", nargs="*", default=[], metavar="NAME=N", help="fewer passes for some backbones")
    parser.add_argument("--batchnorm-batches", type=int, default=16, metavar="N",
                        help="train.batchnorm_batches for the --epochs backbones (0: Keras's moving averages)")
    parser.add_argument("--out", default=None, help="default runs/benchmark_backbones/<npz stem>")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--backbone-set", dest="backbone_overrides", action="append", default=[],
                        metavar="NAME:KEY=VALUE", help="an override for one backbone only (after --set and --epochs)")
    args = parser.parse_args()
    if not os.path.isfile(args.data):
        print(json.dumps({"error": f"{args.data}: no such file"}))
        return 2
    from tfxmed.experiments.compare import compare

    started = time.perf_counter()
    epochs = _epochs(args.epochs)
    own = _backbone_overrides(args.backbone_overrides, args.backbones)
    stem = os.path.splitext(os.path.basename(args.data))[0].lower()
    out = args.out or os.path.join("runs", "benchmark_backbones", stem)
    table, groups = {}, {}
    for name in args.backbones:
        # --epochs NAME=N: N passes over the training split (the recipe's step floor lifted), winning over --set
        # and batch-norm statistics recomputed before each validation: after a few passes from scratch, Keras's
        # moving averages lag the weights (DenseNet121 validated at the majority rate with them)
        overrides = [f"model.name={name}", *args.overrides,
                     *([f"train.epochs={epochs[name]}", "train.min_steps=0",
                        f"train.batchnorm_batches={args.batchnorm_batches}"] if name in epochs else []),
                     *own.get(name, [])]
        folder = os.path.join(out, f"{name}-{epochs[name]}pass" if name in epochs else name)
        rows = [_run_seed(args.recipe, args.data, seed, folder, overrides, None) for seed in args.seeds]
        groups[name] = [os.path.join(folder, f"seed-{seed}") for seed in args.seeds]
        table[name] = {"epochs": epochs.get(name), "own_overrides": own.get(name, []), "seeds": rows,
                       **{key: mean_sd([row[key] for row in rows]) for key in ("test_auc", "test_acc",
                                                                                "train_seconds")},
                       **_efficiency(groups[name][0])}
    reference = args.backbones[0]
    if len(args.backbones) > 1:
        for index in range(len(args.seeds)):  # DeLong / McNemar on each seed's test predictions
            tested = compare([groups[name][index] for name in args.backbones])
            for name, row in zip(args.backbones[1:], tested["against_reference"]):
                test = next(iter(row["delong"].values()))
                table[name].setdefault("delong_p_holm", []).append(test and test["p_holm"])
                table[name].setdefault("mcnemar_p_holm", []).append(row["mcnemar"] and row["mcnemar"]["p_holm"])
        across = compare([], groups=groups) if len(args.seeds) > 1 else {"paired": {}}
        for name, tests in across["paired"].items():
            table[name]["paired_auc_t_p"] = (tests["auc"] or {}).get("t_p_value")
            table[name]["paired_acc_t_p"] = (tests["accuracy"] or {}).get("t_p_value")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "backbones.md"), "w", encoding="utf-8") as stream:
        stream.write(_markdown(table, reference))
    print(json.dumps({"dataset": stem, "recipe": args.recipe, "reference": reference, "overrides": args.overrides,
                      "wall_seconds": time.perf_counter() - started,
                      "backbones": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
