"""Command line: `python -m tfrecords_tools.convert {synthetic,medmnist,folder,csv,...} ... --out DIR`.

Volumes: `synthetic-volumes`, `medmnist3d`, `nifti`, `dicom-series` (`tfrecords_tools.volumes`).

Refused inputs print `error: ...` and exit 2; a full disk or another system error prints what happened
and that re-running resumes, and exits 1; nothing prints a traceback for a bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence

from tqdm import tqdm

from tfrecords_tools import sources
from tfrecords_tools.boundary import claim_output, is_disk_full
from tfrecords_tools.salt import resolve_salt
from tfxmed.data.features import ENCODINGS
from tfxmed.storage import load_manifest


def _parser(prog: str = "python -m tfrecords_tools.convert") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="source", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--out", required=True, help="output folder for shards + manifest.json")
        sub.add_argument("--shard-examples", type=int, default=0, help="max examples per shard (0: by size)")
        sub.add_argument("--salt", default=None, help="secret for patient-id hashing (else $TFXMED_ID_SALT)")
        sub.add_argument("--restart", action="store_true",
                         help="start over; by default a re-run into the same --out continues an interrupted conversion")
        sub.add_argument("--tfds-metadata", action="store_true",
                         help="also write TFDS metadata (read back with tfds.builder_from_directory)")
        sub.add_argument("--smote", type=int, default=0, metavar="PX",
                         help="balance the training split with SMOTE on PX×PX downsampled pixels (0: off)")
        sub.add_argument("--encoding", choices=ENCODINGS, default=None,
                         help="how images are stored: raw pixels (no decoding when read), png, jpeg (lossy; large "
                              "RGB), or auto: raw for small images, png above (default; png with --tfds-metadata)")

    synthetic = commands.add_parser("synthetic", help="the embedded synthetic chest-X-ray benchmark")
    synthetic.add_argument("--image-size", type=int, default=64)
    synthetic.add_argument("--train", type=int, default=2000)
    synthetic.add_argument("--val", type=int, default=400)
    synthetic.add_argument("--test", type=int, default=400)
    synthetic.add_argument("--positive-fraction", type=float, default=0.5)
    synthetic.add_argument("--difficulty", type=float, default=0.5)
    synthetic.add_argument("--multi-label", action="store_true")
    synthetic.add_argument("--confounder-strength", type=float, default=0.0)
    synthetic.add_argument("--seed", type=int, default=42)
    common(synthetic)

    medmnist = commands.add_parser("medmnist", help="a 2-D MedMNIST .npz (official splits kept)")
    medmnist.add_argument("path")
    common(medmnist)

    folder = commands.add_parser("folder", help="class-per-folder image tree")
    folder.add_argument("root")
    folder.add_argument("--channels", type=int, choices=(1, 3), default=1)
    folder.add_argument("--seed", type=int, default=42)
    folder.add_argument("--strict", action="store_true", help="fail on the first unreadable image")
    common(folder)

    table = commands.add_parser("csv", help="CSV of path,label[,mask][,patient_id][,split] (patient-level splits)")
    table.add_argument("csv_path")
    table.add_argument("--image-root", default=None, help="folder the paths are relative to (default: the CSV's)")
    table.add_argument("--channels", type=int, choices=(1, 3), default=1)
    table.add_argument("--folds", type=int, default=5)
    table.add_argument("--seed", type=int, default=42)
    table.add_argument("--strict", action="store_true", help="fail on the first bad row")
    common(table)

    chexpert = commands.add_parser("chexpert", help="CheXpert folder (train.csv, valid.csv; valid = test split)")
    chexpert.add_argument("root")
    chexpert.add_argument("--policy", default="ones", help="uncertain labels: ones | zeros | ignore | multiclass")
    chexpert.add_argument("--all-views", action="store_true", help="keep lateral views (default: frontal only)")
    nih = commands.add_parser("nih", help="NIH ChestX-ray14 folder (Data_Entry_2017.csv, split lists, boxes)")
    nih.add_argument("root")
    isic = commands.add_parser("isic", help="ISIC 2018/2019 one-hot or 2020 target CSV + image folder")
    isic.add_argument("csv_path")
    isic.add_argument("--images", required=True, help="folder of <image>.jpg")
    isic.add_argument("--masks", default=None, help="folder of <image>_segmentation.png (optional)")
    isic.add_argument("--metadata", default=None, help="CSV with image/image_id and lesion_id: split by lesion")
    tfds = commands.add_parser("tfds", help="a TFDS image-classification dataset by name (download needs internet)")
    tfds.add_argument("name")
    tfds.add_argument("--data-dir", default=None, help="TFDS data_dir (default ~/tensorflow_datasets)")
    tfds.add_argument("--download", action="store_true", help="download and prepare it first")
    tfds.add_argument("--image-key", default="image")
    tfds.add_argument("--label-key", default="label")
    common(tfds)
    volumes = commands.add_parser("synthetic-volumes", help="the embedded synthetic chest-CT benchmark (volumes)")
    volumes.add_argument("--size", type=int, default=32, help="voxels per side")
    volumes.add_argument("--train", type=int, default=200)
    volumes.add_argument("--val", type=int, default=60)
    volumes.add_argument("--test", type=int, default=60)
    volumes.add_argument("--positive-fraction", type=float, default=0.5)
    volumes.add_argument("--difficulty", type=float, default=0.5)
    volumes.add_argument("--confounder-strength", type=float, default=0.0)
    volumes.add_argument("--seed", type=int, default=42)
    medmnist3d = commands.add_parser("medmnist3d", help="a MedMNIST 3-D .npz (28³ volumes, official splits)")
    medmnist3d.add_argument("path")
    tables = []
    for name, what in (("nifti", "NIfTI files"), ("dicom-series", "DICOM series folders (one series each)")):
        sub = commands.add_parser(name, help=f"CSV of path,label[,mask][,patient][,split] over {what}")
        sub.add_argument("csv_path")
        sub.add_argument("--window", type=float, nargs=2, default=(-1000.0, 400.0), metavar=("LOW", "HIGH"),
                         help="intensity window mapped to [0, 1] (stored units; default the CT lung window in HU)")
        sub.add_argument("--folds", type=int, default=5)
        sub.add_argument("--seed", type=int, default=42)
        tables.append(sub)
    for sub in (volumes, medmnist3d, *tables):
        sub.add_argument("--out", required=True, help="output folder for shards + manifest.json")
        sub.add_argument("--shard-examples", type=int, default=0, help="volumes per shard (0: 64)")
        sub.add_argument("--salt", default=None, help="secret for patient-id hashing (else $TFXMED_ID_SALT)")
        sub.add_argument("--restart", action="store_true", help="start over instead of resuming")
        sub.set_defaults(tfds_metadata=False, smote=0, encoding=None)
    for sub in (folder, table, chexpert, nih, isic):
        sub.add_argument("--workers", type=int, default=0, help="processes that read and encode images (0: this one)")
        sub.add_argument("--allow-outside-root", action="store_true",
                         help="read files that resolve outside the given folder ('..', absolute paths, symbolic links)")
    for sub in (chexpert, nih, isic):
        sub.add_argument("--folds", type=int, default=5)
        sub.add_argument("--seed", type=int, default=42)
        sub.add_argument("--strict", action="store_true", help="fail on the first bad row or file")
        common(sub)
    return parser


def _ticks(args: argparse.Namespace, salt: str) -> tuple[Iterator[int], int | None]:
    resume = not args.restart
    encoding = args.encoding or ("png" if args.tfds_metadata else "auto")
    if args.source == "synthetic":
        counts = {"train": args.train, "val": args.val, "test": args.test}
        ticks = sources.convert_synthetic(
            args.out, args.image_size, counts, args.positive_fraction, args.difficulty,
            args.multi_label, args.confounder_strength, args.seed, args.shard_examples, salt, resume, encoding,
        )
        return ticks, sum(counts.values())
    if args.source in ("synthetic-volumes", "medmnist3d", "nifti", "dicom-series"):
        from tfrecords_tools import volumes

        layout = dict(shard_examples=args.shard_examples, salt=salt, resume=resume)
        if args.source == "synthetic-volumes":
            counts = {"train": args.train, "val": args.val, "test": args.test}
            return volumes.convert_synthetic_volumes(args.out, args.size, counts, args.positive_fraction,
                                                     args.difficulty, args.confounder_strength, args.seed,
                                                     **layout), sum(counts.values())
        if args.source == "medmnist3d":
            return volumes.convert_medmnist3d(args.path, args.out, **layout), None
        return volumes.convert_volume_table(args.source, args.csv_path, args.out, args.window, folds=args.folds,
                                            seed=args.seed, **layout), None
    if args.source == "csv":
        from tfrecords_tools.csv_table import convert_csv

        return convert_csv(args.csv_path, args.out, args.image_root, args.channels, folds=args.folds, seed=args.seed,
                           shard_examples=args.shard_examples, salt=salt, strict=args.strict, resume=resume,
                           workers=args.workers, allow_outside_root=args.allow_outside_root, encoding=encoding), None
    public = dict(folds=args.folds, seed=args.seed, shard_examples=args.shard_examples, salt=salt, strict=args.strict,
                  resume=resume, workers=args.workers, allow_outside_root=args.allow_outside_root, encoding=encoding,
                  ) if args.source in ("chexpert", "nih", "isic") else {}
    if args.source == "chexpert":
        from tfrecords_tools.chexpert import convert_chexpert

        return convert_chexpert(args.root, args.out, args.policy, not args.all_views, **public), None
    if args.source == "nih":
        from tfrecords_tools.nih import convert_nih

        return convert_nih(args.root, args.out, **public), None
    if args.source == "isic":
        from tfrecords_tools.isic import convert_isic

        return convert_isic(args.csv_path, args.images, args.out, args.masks, args.metadata, **public), None
    if args.source == "tfds":
        from tfrecords_tools.tfds_io import convert_tfds

        return convert_tfds(args.name, args.out, args.data_dir, args.image_key, args.label_key, download=args.download,
                            shard_examples=args.shard_examples, salt=salt, resume=resume, encoding=encoding), None
    if args.source == "medmnist":
        return sources.convert_medmnist(args.path, args.out, args.shard_examples, salt, resume, encoding), None
    return (
        sources.convert_folder(
            args.root, args.out, args.channels, seed=args.seed,
            shard_examples=args.shard_examples, salt=salt, strict=args.strict, resume=resume, workers=args.workers,
            allow_outside_root=args.allow_outside_root, encoding=encoding,
        ),
        None,
    )


def _convert(args: argparse.Namespace) -> dict:
    """Runs the conversion and its --tfds-metadata / --smote steps; returns the manifest."""
    ticks, total = _ticks(args, resolve_salt(args.salt))
    for _ in tqdm(ticks, total=total, unit="img", desc=f"convert {args.source}", file=sys.stderr):
        pass
    if args.tfds_metadata:
        from tfrecords_tools.tfds_io import write_tfds_metadata

        write_tfds_metadata(args.out)
    if args.smote:
        from tfrecords_tools.smote import add_smote

        print(f"SMOTE: {add_smote(args.out, size=args.smote, seed=getattr(args, 'seed', 42))}", file=sys.stderr)
    return load_manifest(args.out)


def _system_error(error: OSError, out: str) -> str:
    resumes = f"the shards finished so far are kept and journaled in {out}; re-run the same command to resume " \
              "(--restart starts over)"
    if is_disk_full(error):
        return f"no space left on the device holding {out} ({error.strerror or error}): free some space; {resumes}"
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror or error}{where} while converting into {out}; {resumes}"


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfrecords_tools.convert") -> int:
    args = _parser(prog).parse_args(argv)
    if args.tfds_metadata and args.smote:
        return _fail("--tfds-metadata and --smote cannot be combined (SMOTE shards do not follow TFDS naming)", 2)
    if args.tfds_metadata and args.encoding not in (None, "png"):
        return _fail(f"--tfds-metadata describes PNG images; --encoding {args.encoding} cannot be read by TFDS", 2)
    try:
        with claim_output(args.out):  # one conversion per folder, its extra steps included
            manifest = _convert(args)
    except (ValueError, FileNotFoundError) as error:  # tfxmed.errors.Refusal is a ValueError
        return _fail(str(error), 2)
    except OSError as error:
        return _fail(_system_error(error, args.out), 1)
    except KeyboardInterrupt:
        return _fail(f"interrupted; the shards finished so far are kept in {args.out}: re-run the same command to "
                     "resume", 130)
    counts = {split: info["count"] for split, info in manifest["splits"].items()}
    print(f"wrote {args.out}: {counts}, classes {manifest['class_names']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
