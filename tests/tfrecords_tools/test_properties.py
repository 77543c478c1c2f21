"""Property-based tests (Hypothesis) of the converters' boundaries: CSV rows, MedMNIST arrays, image bytes.

Whatever the input, a conversion ends in a clear `Refusal`, a skipped item with its reason, or correct
records; it never reads a file outside the root it was given, never writes outside its output folder,
and never writes one image twice.
"""

import contextlib
import csv
import io
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from tfrecords_tools import items as items_module
from tfrecords_tools.csv_table import convert_csv
from tfrecords_tools.medmnist import convert_medmnist
from tfrecords_tools.sources import convert_folder
from tfxmed.data import features
from tfxmed.errors import Refusal
from tfxmed.storage import load_manifest

# 30 examples per property keep the file at a few seconds; TFXMED_PROPERTY_EXAMPLES=500 searches deeper.
SETTINGS = settings(max_examples=int(os.environ.get("TFXMED_PROPERTY_EXAMPLES", 30)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)


def _snapshot(base: str, skip: str) -> dict:
    """Every entry under `base` but `skip`: (kind, size, mtime, bytes) to see that nothing else changed."""
    found = {}
    for folder, directories, files in os.walk(base):
        directories[:] = [d for d in directories if os.path.join(folder, d) != skip]
        for name in [*directories, *files]:
            path = os.path.join(folder, name)
            status = os.lstat(path)
            content = open(path, "rb").read() if os.path.isfile(path) and not os.path.islink(path) else b""
            found[os.path.relpath(path, base)] = (status.st_mode, status.st_size, status.st_mtime_ns, content)
    return found


def _records(out: str, split: str | None = None) -> list[dict]:
    manifest = load_manifest(out)
    files = [os.path.join(out, s["file"]) for name, v in manifest["splits"].items() for s in v["shards"]
             if split in (None, name)]
    return [features.parse(raw, manifest["num_classes"], manifest["channels"])
            for raw in tf.data.TFRecordDataset(files)]


@contextlib.contextmanager
def _watched_reads(root: str):
    """Fails if an image or mask outside `root` is opened."""
    outside = []
    read, read_image = items_module._read, items_module.read_image

    def check(path):
        if os.path.commonpath([os.path.realpath(path), os.path.realpath(root)]) != os.path.realpath(root):
            outside.append(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(items_module, "_read", lambda path, channels: check(path) or read(path, channels))
        patch.setattr(items_module, "read_image", lambda path, channels: check(path) or read_image(path, channels))
        yield
    assert outside == []


def _png(path: str, pixels: np.ndarray) -> None:
    Image.fromarray(pixels).save(path, format="PNG")


# --- CSV rows ------------------------------------------------------------------------------------------

PATHS = ["a.png", "./a.png", "sub/../a.png", "b.png", "sub/c.png", "link.png", "broken.png", "missing.png", "sub",
         "..", "../outside/secret.png", "ABSOLUTE", "", "a.png,b.png"]
COLUMNS = ["path", "label", "mask", "patient_id", "split"]


@st.composite
def tables(draw):
    optional = draw(st.lists(st.sampled_from(COLUMNS[2:]), unique=True))
    required = COLUMNS[:2] if draw(st.integers(0, 9)) else draw(st.lists(st.sampled_from(COLUMNS[:2]), unique=True))
    columns = draw(st.permutations([*required, *optional]))
    values = {
        "path": st.one_of(st.sampled_from(PATHS), TEXT),
        "label": st.one_of(st.sampled_from(["x", "y", "x|y", "", " "]), TEXT),
        "mask": st.one_of(st.just(""), st.sampled_from(["a.png", "link.png", "../outside/secret.png", "nope.png"])),
        "patient_id": st.one_of(st.sampled_from(["", "P1", "P2"]), TEXT),
        "split": st.one_of(st.sampled_from(["train", "val", "test", ""]), TEXT),
    }
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        row = [draw(values[c]) for c in columns]
        row = row[:draw(st.integers(0, len(row)))] if draw(st.booleans()) and draw(st.booleans()) else row
        rows.append(row + draw(st.lists(TEXT, max_size=2)) if draw(st.integers(0, 5)) == 0 else row)
    return columns, rows


@SETTINGS
@given(tables())
def test_csv_rows_never_crash_never_leave_the_root_and_land_once(table):
    columns, rows = table
    with tempfile.TemporaryDirectory() as base:
        root, outside, out = (os.path.join(base, name) for name in ("root", "outside", "out"))
        os.makedirs(os.path.join(root, "sub")), os.makedirs(outside)
        rng = np.random.default_rng(0)
        for name in ("a.png", "b.png", "sub/c.png"):
            _png(os.path.join(root, name), rng.integers(0, 256, (8, 8), dtype=np.uint8))
        _png(os.path.join(outside, "secret.png"), np.full((5, 7), 99, np.uint8))
        os.symlink(os.path.join(outside, "secret.png"), os.path.join(root, "link.png"))
        open(os.path.join(root, "broken.png"), "wb").write(b"\x89PNG\r\n\x1a\n broken")
        rows = [[os.path.join(outside, "secret.png") if v == "ABSOLUTE" else v for v in row] for row in rows]
        with open(os.path.join(root, "d.csv"), "w", newline="", encoding="utf-8") as stream:
            csv.writer(stream).writerows([columns, *rows])
        before = _snapshot(base, out)
        try:
            with _watched_reads(root):
                sum(convert_csv(os.path.join(root, "d.csv"), out, salt="s", shard_examples=2))
        except Refusal as refusal:
            event("refused")
            assert str(refusal)
        else:
            event("converted")
            manifest, records = load_manifest(out), _records(out)
            with open(os.path.join(root, "d.csv"), newline="", encoding="utf-8") as stream:
                listed = len(list(csv.DictReader(stream)))
            assert len(records) + manifest["skipped"] == listed  # every row written or reported
            assert all(r["image"].shape[:2] == (8, 8) for r in records)  # never the image outside the root
            images = [r["image"].numpy().tobytes() for r in records]
            assert len(set(images)) == len(images)  # one image, one record: it cannot be in two splits
        assert _snapshot(base, out) == before


# --- MedMNIST arrays -----------------------------------------------------------------------------------

DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64, np.bool_]


CORRUPTIONS = ["nan", "inf", "fewer labels", "more labels", "flat images", "two channels", "label beyond",
               "negative label", "unseen label", "fractional label", "bool images", "no training images"]


@st.composite
def medmnist_files(draw):
    """(stem, arrays): a well-formed file of a random dtype and shape, half of the time with one corruption."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES[:-1])))
    height, width, tail = draw(st.integers(2, 4)), draw(st.integers(2, 4)), draw(st.sampled_from([(), (1,), (3,)]))
    if dtype.kind == "f":
        elements = draw(st.sampled_from([st.floats(0, 1, width=32), st.floats(-5, 70000, width=32),
                                         st.integers(0, 255).map(float)]))
    else:
        info = np.iinfo(dtype)
        elements = st.integers(max(info.min, -300), min(info.max, draw(st.sampled_from([255, 70000]))))
    stem = draw(st.sampled_from(["arrays", "arrays", "pathmnist", "chestmnist"]))
    columns = 14 if stem == "chestmnist" else draw(st.sampled_from([0, 1, 3]))  # 0: labels [N]; 3: multi-label
    classes = draw(st.integers(1, 4))
    arrays = {}
    for split in ("train", "val", "test"):
        count = draw(st.integers(1 if split == "train" else 0, 3))
        arrays[f"{split}_images"] = draw(hnp.arrays(dtype, (count, height, width, *tail), elements=elements))
        if columns > 1:
            arrays[f"{split}_labels"] = draw(hnp.arrays(np.uint8, (count, columns), elements=st.integers(0, 1)))
        else:
            labels = np.array(draw(st.lists(st.integers(0, classes - 1), min_size=count, max_size=count)), np.int64)
            if split == "train":
                seen = set(labels.tolist())
            else:
                labels = np.array([label if label in seen else min(seen) for label in labels], np.int64)
            arrays[f"{split}_labels"] = labels.reshape(-1, 1) if columns else labels
    corruption = draw(st.one_of(st.none(), st.sampled_from(CORRUPTIONS)))
    split = draw(st.sampled_from(["train", "val", "test"]))
    images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    if corruption in ("nan", "inf") and dtype.kind == "f" and images.size:
        images.reshape(-1)[draw(st.integers(0, images.size - 1))] = np.nan if corruption == "nan" else -np.inf
    elif corruption == "fewer labels" and len(labels):
        arrays[f"{split}_labels"] = labels[:-1]
    elif corruption == "more labels":
        arrays[f"{split}_labels"] = np.concatenate([labels, labels[:1] if len(labels) else np.zeros_like(
            arrays["train_labels"][:1])])
    elif corruption == "flat images":
        arrays[f"{split}_images"] = images.reshape(images.shape[0], int(np.prod(images.shape[1:])))
    elif corruption == "two channels":
        single = images if images.ndim == 3 else images[..., 0]
        arrays[f"{split}_images"] = np.stack([single, single], axis=-1)
    elif corruption in ("label beyond", "negative label", "unseen label", "fractional label") and labels.size:
        value = {"label beyond": 9 if stem == "pathmnist" else 5, "negative label": -1, "unseen label": 4,
                 "fractional label": 0.5}[corruption]
        labels = labels.astype(np.float64 if corruption == "fractional label" else np.int64)
        labels.reshape(-1)[0] = value
        arrays[f"{split}_labels"] = labels
    elif corruption == "bool images":
        arrays[f"{split}_images"] = images > 0
    elif corruption == "no training images":
        arrays["train_images"], arrays["train_labels"] = images[:0], arrays["train_labels"][:0]
    return stem, arrays


def _expected_uint8(arrays: dict) -> dict:
    """The documented pixel rule, written out again: [0, 1] floats × 255; whole numbers in [0, 255] kept;
    else one linear map of the file's minimum and maximum onto [0, 255]."""
    images = [a for key, a in arrays.items() if key.endswith("_images") and a.size]
    low, high = min(float(a.min()) for a in images), max(float(a.max()) for a in images)
    if any(a.dtype.kind == "f" for a in images) and 0 <= low and high <= 1:
        return {k: np.round(a.astype(np.float64) * 255) for k, a in arrays.items()}
    if all(np.array_equal(a, np.round(a)) for a in images) and 0 <= low and high <= 255:
        return dict(arrays)
    scale = 255 / (high - low) if high > low else 0.0
    return {k: np.round((a.astype(np.float64) - low) * scale) for k, a in arrays.items()}


@SETTINGS
@given(medmnist_files())
def test_medmnist_arrays_are_refused_whole_or_converted_exactly(file):
    stem, arrays = file
    with tempfile.TemporaryDirectory() as base:
        path, out = os.path.join(base, f"{stem}.npz"), os.path.join(base, "out")
        np.savez(path, **arrays)
        before = _snapshot(base, out)
        try:
            sum(convert_medmnist(path, out, salt="s"))
        except Refusal as refusal:
            event("refused")
            assert f"{stem}.npz" in str(refusal)
            assert not os.path.exists(out)  # a bad file is refused before anything is written
        else:
            event("converted")
            expected = _expected_uint8({k: v for k, v in arrays.items() if k.endswith("_images")})
            manifest = load_manifest(out)
            for split in ("train", "val", "test"):
                images, labels = expected[f"{split}_images"], arrays[f"{split}_labels"]
                mine = _records(out, split) if split in manifest["splits"] else []
                assert len(mine) == len(images) == len(labels)
                for record, image, label in zip(mine, images, labels):
                    image = image if image.ndim == 3 else image[..., None]
                    np.testing.assert_array_equal(record["image"].numpy(), image.astype(np.uint8))
                    vector = record["label"].numpy()
                    if manifest["multi_label"]:
                        np.testing.assert_array_equal(vector, label)
                    else:
                        assert int(vector.argmax()) == int(np.reshape(label, -1)[0])
        assert _snapshot(base, out) == before


# --- image bytes ---------------------------------------------------------------------------------------

def _encoded(pixels: np.ndarray, format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format)
    return buffer.getvalue()


@st.composite
def image_files(draw):
    """(extension, bytes, source index or None): truncated PNG/JPEG files of known sources, or random bytes."""
    files = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            source, format = draw(st.integers(0, 1)), draw(st.sampled_from(["PNG", "JPEG"]))
            files.append(("truncated", source, format, draw(st.floats(0, 1))))
        else:
            prefix = draw(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\x00" * 128 + b"DICM"]))
            extension = draw(st.sampled_from([".png", ".jpg", ".tif", ".dcm"]))
            files.append(("random", extension, prefix + draw(st.binary(max_size=200))))
    return files


@SETTINGS
@given(image_files())
def test_image_bytes_are_skipped_with_a_reason_or_written_exactly(files):
    rng = np.random.default_rng(1)
    sources = [rng.integers(0, 256, (6, 6), dtype=np.uint8) for _ in range(2)]
    with tempfile.TemporaryDirectory() as base:
        root, out = os.path.join(base, "tree"), os.path.join(base, "out")
        known = set()
        for label in ("a", "b"):
            os.makedirs(os.path.join(root, label))
            for i in range(2):
                pixels = rng.integers(0, 256, (6, 6), dtype=np.uint8)
                _png(os.path.join(root, label, f"good{i}.png"), pixels)
                known.add(pixels.tobytes())
        for source in sources:
            known.add(source.tobytes())
            known.add(np.asarray(Image.open(io.BytesIO(_encoded(source, "JPEG"))).convert("L")).tobytes())
        randoms = 0
        for position, entry in enumerate(files):
            if entry[0] == "truncated":
                _, source, format, fraction = entry
                data = _encoded(sources[source], format)
                name, data = f"t{position}.{format.lower()}", data[:int(len(data) * fraction)]
            else:
                _, extension, data = entry
                name, randoms = f"r{position}{extension}", randoms + 1
            open(os.path.join(root, "ab"[position % 2], name), "wb").write(data)
        before = _snapshot(base, out)
        try:
            sum(convert_folder(root, out, salt="s", shard_examples=3))
        except Refusal as refusal:
            assert str(refusal)
        else:
            manifest, records = load_manifest(out), _records(out)
            assert len(records) + manifest["skipped"] == 4 + len(files)
            reports = open(os.path.join(out, "skipped.csv")).read() + open(os.path.join(out, ".progress.json")).read()
            assert not any(name in reports for name in os.listdir(os.path.join(root, "a")))  # positions, not names
            unknown = [r for r in records if r["image"].numpy()[..., 0].tobytes() not in known]
            assert len(unknown) <= randoms  # a truncated file is refused or decodes to its source exactly
        assert _snapshot(base, out) == before
