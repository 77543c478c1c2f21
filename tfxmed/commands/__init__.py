"""The command line: `python -m tfxmed <command> [flags]` (also installed as `tfxmed`).

Each command is a thin module here that parses its flags and calls one library function. The older
`python -m tfxmed.<command>` forms (`python -m tfxmed.train --strategy=tpu`, ...) run the same code.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main"]

# command → (module under tfxmed.commands, one line for --help), in the order of the workflow.
COMMANDS = {
    "convert": ("convert", "convert a dataset (folder, CSV, DICOM, CheXpert, NIH, ISIC, MedMNIST, TFDS) to TFRecords"),
    "inspect": ("inspect_records", "counts, checks and a contact sheet of converted TFRecords"),
    "train": ("train", "train a classifier under a tf.distribute strategy"),
    "evaluate": ("evaluate", "diagnostic, localisation and faithfulness metrics of a run"),
    "explain": ("explain", "explanation maps, overlays and TensorBoard images for a run's images"),
    "export": ("export", "SavedModel with serving_default and explain signatures"),
    "report": ("report", "one self-contained HTML report of a run"),
    "audit": ("audit", "shortcut audit: decisions without the spurious cue, explanation mass on it"),
    "study": ("study", "reader study: clinicians rate explanations (trust 1–5) in a browser; κ and HTS"),
    "tune": ("tune", "KerasTuner hyperparameter search"),
    "ablate": ("ablate", "ablation over variants and seeds with paired tests"),
    "crossval": ("crossval", "k-fold cross-validation by patient"),
    "ensemble": ("ensemble", "one run from several: mean, validation-weighted or stacked (cross-fitted) logits"),
    "compare": ("compare", "DeLong and McNemar tests of runs on one split; paired tests across seed groups"),
    "auto": ("auto", "budgeted search, seed ensemble and one test evaluation on a MedMNIST-style .npz"),
    "demo": ("demo", "the whole pipeline on the embedded synthetic benchmark"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m tfxmed <command> [flags]   (or: tfxmed <command>)", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "`python -m tfxmed <command> --help` shows a command's flags."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from tfxmed import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command '{name}'; choose from {', '.join(COMMANDS)}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"tfxmed.commands.{COMMANDS[name][0]}")
    return module.main(rest, prog=f"python -m tfxmed {name}")
