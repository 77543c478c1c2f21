"""A load test of the readers' pages: many readers rating at once against a served study.

`synthetic_study` writes a study without a model (blobs for images and maps), for trying the pages and
for load tests; `load_test` serves a study in a separate process (`python -m tfxmed study serve`),
lets `readers` threads each sign in and post `ratings` ratings (reading each page first, as a browser
does), and checks the database afterwards: exactly one current row per rated explanation and one
history row per accepted submission. `scripts/benchmark_study.py` prints its result.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.cookiejar
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import numpy as np

from tfxmed.reader_study import db
from tfxmed.reader_study.cases import DEFAULT_METHODS, png_bytes, write_study_db

__all__ = ["synthetic_study", "served", "rate_as_reader", "load_test"]

FIELD = re.compile(r'name="(csrf|case|map|submission)" value="([^"]*)"')


def synthetic_study(path: str, cases: int = 20, methods=DEFAULT_METHODS, seed: int = 0, size: int = 64) -> str:
    """Writes a study of `cases` synthetic cases (a blob; each method's map a blob nearby) at `path`."""
    rng = np.random.default_rng(seed)
    folder = db.files_dir(path)
    os.makedirs(folder)
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1)

    def blob(centre, width) -> np.ndarray:
        return np.exp(-((grid - centre) ** 2).sum(-1) / (2.0 * width ** 2))

    def save(rgb) -> str:
        image_id = secrets.token_hex(16)
        with open(os.path.join(folder, f"{image_id}.png"), "wb") as stream:
            stream.write(png_bytes(rgb))
        return image_id

    case_rows, map_rows = [], []
    outcomes = ("TP", "FP", "FN", "TN")
    for position in range(cases):
        centre = rng.uniform(0.25 * size, 0.75 * size, 2)
        image = 0.3 + 0.5 * blob(centre, 0.08 * size) + 0.05 * rng.standard_normal((size, size))
        outcome, case_id = outcomes[position % 4], secrets.token_hex(8)
        case_rows.append((case_id, position, position, outcome, int(outcome in ("TP", "FN")), 1,
                          float(rng.uniform(0.5, 1.0) if outcome in ("TP", "FP") else rng.uniform(0.0, 0.5)),
                          save(np.repeat(np.clip(image, 0, 1)[..., None], 3, -1))))
        for method in methods:
            heat = blob(centre + rng.normal(0, 0.1 * size, 2), 0.1 * size)
            rgb = 0.6 * np.clip(image, 0, 1)[..., None] + 0.4 * np.stack([heat, 0.3 * heat, 1 - heat], -1)
            lesion = outcome in ("TP", "FN")
            map_rows.append((secrets.token_hex(8), case_id, method, save(rgb),
                             float(rng.uniform()) if lesion else None, float(rng.integers(0, 2)) if lesion else None))
    write_study_db(path, "", "test", list(methods), 0.5, seed, ["normal", "lesion"], case_rows, map_rows)
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(study: str, start_timeout: float = 60.0) -> Iterator[str]:
    """Serves `study` with `python -m tfxmed study serve` in a child process; yields its base URL."""
    port = _free_port()
    log = tempfile.TemporaryFile("w+")  # the server logs every request: a pipe nobody reads would fill and block it
    process = subprocess.Popen([sys.executable, "-m", "tfxmed", "study", "serve", study, "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                urllib.request.urlopen(url + "/static/study.css", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"the study server did not start: {log.read()[-2000:]}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def rate_as_reader(url: str, link: str, ratings: int, seed: int = 0) -> list[float]:
    """Signs in with `link`, then reads and rates `ratings` items in order; returns each POST's seconds.

    Every tenth rating is posted twice with the same submission id (a double-click); each rating's
    trust is a deterministic function of (seed, position) so the database can be checked.
    """
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    opener.open(url + urllib.parse.urlparse(link).path, timeout=60).read()
    timings = []
    for position in range(ratings):
        page = opener.open(f"{url}/item/{position}", timeout=60).read().decode("utf-8")
        fields = dict(FIELD.findall(page))
        fields.update(trust=str(expected_trust(seed, position)), points="unsure", comment=f"load {position}")
        body = urllib.parse.urlencode(fields).encode()
        for _ in range(2 if position % 10 == 0 else 1):
            request = urllib.request.Request(url + "/rate", body, headers={"Accept": "application/json"})
            started = time.perf_counter()
            opener.open(request, timeout=60).read()
            timings.append(time.perf_counter() - started)
    return timings


def expected_trust(seed: int, position: int) -> int:
    return 1 + (seed * 7 + position * 3) % 5


def load_test(folder: str, readers: int = 20, ratings: int = 50) -> dict:
    """`readers` concurrent readers × `ratings` ratings on a fresh synthetic study in `folder`.

    Returns the timings (p50 / p95 / max of the rating POSTs) and the database's counts, with `ok`
    when they are exactly what was posted (no loss, no duplicate) and every rating holds its value.
    """
    methods = DEFAULT_METHODS
    study = synthetic_study(os.path.join(folder, "load.db"), cases=-(-ratings // len(methods)), methods=methods)
    links = [db.register_reader(study, f"reader {k:02d}")["link"] for k in range(readers)]
    with served(study) as url:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(readers) as pool:
            results = list(pool.map(lambda k: rate_as_reader(url, links[k], ratings, seed=k), range(readers)))
        elapsed = time.perf_counter() - started
    timings = np.array([t for reader in results for t in reader]) * 1000.0
    connection = db.connect(study)
    try:
        current = connection.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
        history = connection.execute("SELECT COUNT(*) FROM rating_history").fetchone()[0]
        wrong = connection.execute(
            """SELECT rd.name, i.position, r.trust FROM ratings r JOIN readers rd ON rd.reader_id = r.reader_id
               JOIN maps m ON m.case_id = r.case_id AND m.method = r.method
               JOIN items i ON i.reader_id = r.reader_id AND i.map_id = m.map_id""").fetchall()
    finally:
        connection.close()
    mismatched = sum(row["trust"] != expected_trust(int(row["name"].split()[-1]), row["position"]) for row in wrong)
    expected = readers * ratings
    return {"readers": readers, "ratings_per_reader": ratings, "posts": int(len(timings)), "seconds": elapsed,
            "p50_ms": float(np.percentile(timings, 50)), "p95_ms": float(np.percentile(timings, 95)),
            "max_ms": float(timings.max()), "rows": current, "history_rows": history, "expected_rows": expected,
            "mismatched_values": int(mismatched),
            "ok": current == expected and history == expected and mismatched == 0}
