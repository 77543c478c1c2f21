"""The study database (SQLite): cases, their rendered maps, readers, and ratings with their history.

    meta            key → value: the run, split, methods, the session-signing secret, ...
    cases           one row per case: an opaque random id, the model's decision, the image file
    maps            one row per (case, method): an opaque id readers see instead of the method, its
                    image file, and its IoU / pointing-game hit on the case's lesion mask (NULL: no mask)
    readers         name and the SHA-256 of the login token (the token itself is never stored)
    items           each reader's own order of (case, map): cases shuffled, methods shuffled per case
    ratings         the current rating: one row per (reader, case, method), with timestamps and a revision
    rating_history  every accepted submission, keyed by (reader, submission id): a repeated submission
                    (a double-click, a retried request) is recognised and not counted twice

Every connection runs in WAL mode with a busy timeout; a rating is written in one `BEGIN IMMEDIATE`
transaction (history row, then the current row), so concurrent readers serialise on the write lock
instead of losing or duplicating a rating.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import random
import re
import secrets
import sqlite3
from collections.abc import Iterator

__all__ = ["SCHEMA", "TRUST_SCALE", "POINTING_ANSWERS", "RatingError", "connect", "transaction", "token_hash",
           "add_reader", "reader_for_token", "reader_item", "progress", "first_unrated", "submit_rating",
           "image_exists", "meta", "files_dir", "register_reader"]

TRUST_SCALE = (1, 2, 3, 4, 5)
POINTING_ANSWERS = ("yes", "no", "unsure")
MAX_COMMENT = 2000
SUBMISSION_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY, position INTEGER NOT NULL UNIQUE, split_index INTEGER NOT NULL,
    outcome TEXT NOT NULL, label INTEGER NOT NULL, explained_class INTEGER NOT NULL,
    probability REAL NOT NULL, image_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS maps (
    map_id TEXT PRIMARY KEY, case_id TEXT NOT NULL REFERENCES cases(case_id), method TEXT NOT NULL,
    image_id TEXT NOT NULL UNIQUE, iou REAL, pointing_game REAL, UNIQUE (case_id, method));
CREATE TABLE IF NOT EXISTS readers (
    reader_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_sha256 TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    reader_id INTEGER NOT NULL REFERENCES readers(reader_id), position INTEGER NOT NULL,
    map_id TEXT NOT NULL REFERENCES maps(map_id), PRIMARY KEY (reader_id, position), UNIQUE (reader_id, map_id));
CREATE TABLE IF NOT EXISTS ratings (
    reader_id INTEGER NOT NULL REFERENCES readers(reader_id), case_id TEXT NOT NULL REFERENCES cases(case_id),
    method TEXT NOT NULL, trust INTEGER NOT NULL CHECK (trust BETWEEN 1 AND 5),
    points_at_finding TEXT CHECK (points_at_finding IN ('yes', 'no', 'unsure')), comment TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL, updated TEXT NOT NULL, revision INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (reader_id, case_id, method));
CREATE TABLE IF NOT EXISTS rating_history (
    reader_id INTEGER NOT NULL REFERENCES readers(reader_id), submission_id TEXT NOT NULL,
    case_id TEXT NOT NULL, method TEXT NOT NULL, trust INTEGER NOT NULL, points_at_finding TEXT,
    comment TEXT NOT NULL, submitted TEXT NOT NULL, PRIMARY KEY (reader_id, submission_id));
"""


class RatingError(ValueError):
    """A refused rating or lookup; `status` is the HTTP status the server answers with (400 or 404)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def files_dir(path: str) -> str:
    """The folder of a study's rendered PNGs: `study.db` → `study_files/` beside it."""
    root, _ = os.path.splitext(os.path.abspath(path))
    return root + "_files"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal, foreign keys on."""
    connection = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA busy_timeout = 30000")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")  # durable at each WAL checkpoint; safe against corruption
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` … `COMMIT` (or `ROLLBACK` on an exception): takes the write lock up front."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def meta(connection: sqlite3.Connection, key: str) -> str | None:
    row = connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row["value"]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_reader(connection: sqlite3.Connection, name: str, reissue: bool = False) -> str:
    """Adds reader `name` with their own order of the study's items; returns the login token (shown once).

    `reissue` replaces an existing reader's token (the old link stops working; their ratings stay).
    """
    name = name.strip()
    if not name or len(name) > 80:
        raise RatingError(f"a reader's name must be 1–80 characters; got {name!r}")
    token = secrets.token_urlsafe(24)
    with transaction(connection):
        existing = connection.execute("SELECT reader_id FROM readers WHERE name = ?", (name,)).fetchone()
        if existing and not reissue:
            raise RatingError(f"reader '{name}' exists; pass --reissue for a new link (the old one stops working)")
        if existing:
            connection.execute("UPDATE readers SET token_sha256 = ? WHERE reader_id = ?",
                               (token_hash(token), existing["reader_id"]))
            return token
        reader_id = connection.execute("INSERT INTO readers (name, token_sha256, created) VALUES (?, ?, ?)",
                                       (name, token_hash(token), now())).lastrowid
        shuffle = random.SystemRandom()
        maps: dict[str, list[str]] = {}
        for row in connection.execute("SELECT case_id, map_id FROM maps ORDER BY case_id, method"):
            maps.setdefault(row["case_id"], []).append(row["map_id"])
        cases = sorted(maps)
        shuffle.shuffle(cases)  # each reader sees the cases in their own order ...
        order = []
        for case_id in cases:
            shuffle.shuffle(maps[case_id])  # ... and each case's methods in their own order, blinded
            order += maps[case_id]
        connection.executemany("INSERT INTO items (reader_id, position, map_id) VALUES (?, ?, ?)",
                               [(reader_id, position, map_id) for position, map_id in enumerate(order)])
    return token


def reader_for_token(connection: sqlite3.Connection, token: str) -> sqlite3.Row | None:
    return connection.execute("SELECT reader_id, name FROM readers WHERE token_sha256 = ?",
                              (token_hash(token),)).fetchone()


def methods_per_case(connection: sqlite3.Connection) -> int:
    return connection.execute("SELECT COUNT(*) FROM maps GROUP BY case_id LIMIT 1").fetchone()[0]


def reader_item(connection: sqlite3.Connection, reader_id: int, position: int) -> dict | None:
    """What reader `reader_id` sees at `position` of their order, with their own rating of it (if any)."""
    row = connection.execute(
        """SELECT i.position, m.map_id, m.method, m.image_id AS map_image, c.case_id, c.image_id AS case_image,
                  c.explained_class, c.probability, r.trust, r.points_at_finding, r.comment
           FROM items i JOIN maps m ON m.map_id = i.map_id JOIN cases c ON c.case_id = m.case_id
           LEFT JOIN ratings r ON r.reader_id = i.reader_id AND r.case_id = c.case_id AND r.method = m.method
           WHERE i.reader_id = ? AND i.position = ?""", (reader_id, position)).fetchone()
    if row is None:
        return None
    item = dict(row)
    per_case = methods_per_case(connection)
    item.update(case_number=position // per_case + 1, explanation_number=position % per_case + 1,
                explanations=per_case)
    return item


def progress(connection: sqlite3.Connection, reader_id: int) -> dict:
    """Cases fully rated by this reader, of all cases; items rated, of all items."""
    items, rated = connection.execute(
        """SELECT COUNT(*), COUNT(r.trust) FROM items i JOIN maps m ON m.map_id = i.map_id
           LEFT JOIN ratings r ON r.reader_id = i.reader_id AND r.case_id = m.case_id AND r.method = m.method
           WHERE i.reader_id = ?""", (reader_id,)).fetchone()
    per_case = methods_per_case(connection)
    cases_done = connection.execute(
        """SELECT COUNT(*) FROM (SELECT case_id FROM ratings WHERE reader_id = ? GROUP BY case_id
           HAVING COUNT(*) = ?)""", (reader_id, per_case)).fetchone()[0]
    return {"total": items, "rated": rated, "cases": items // per_case, "cases_done": cases_done}


def first_unrated(connection: sqlite3.Connection, reader_id: int) -> int | None:
    """The first position of the reader's order without their rating (where they resume), or None."""
    row = connection.execute(
        """SELECT MIN(i.position) FROM items i JOIN maps m ON m.map_id = i.map_id
           LEFT JOIN ratings r ON r.reader_id = i.reader_id AND r.case_id = m.case_id AND r.method = m.method
           WHERE i.reader_id = ? AND r.trust IS NULL""", (reader_id,)).fetchone()
    return row[0]


def _checked(trust, points, comment, submission_id) -> tuple[int, str | None, str, str]:
    try:
        trust = int(str(trust).strip())
    except ValueError:
        raise RatingError(f"trust must be a whole number from 1 to 5; got {str(trust)[:20]!r}") from None
    if trust not in TRUST_SCALE:
        raise RatingError(f"trust must be from 1 to 5; got {trust}")
    points = (points or "").strip() or None
    if points is not None and points not in POINTING_ANSWERS:
        raise RatingError(f"'does the map point at the finding?' must be yes, no or unsure; got {points[:20]!r}")
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise RatingError(f"a comment holds at most {MAX_COMMENT} characters; got {len(comment)}")
    if not isinstance(submission_id, str) or not SUBMISSION_ID.fullmatch(submission_id):
        raise RatingError("the form's submission id is missing or malformed: reload the page")
    return trust, points, comment, submission_id


def submit_rating(connection: sqlite3.Connection, reader_id: int, case_id: str, map_id: str, trust, points=None,
                  comment: str = "", submission_id: str = "") -> dict:
    """Records a reader's rating of one map of one case, once per submission id; returns {position, duplicate}.

    The current row is inserted or updated (revision + 1) and the submission appended to the history in
    one transaction; a submission id seen before for this reader changes nothing (duplicate: True).
    Raises `RatingError` (400) for a bad value, (404) for a case or map that is not this reader's.
    """
    trust, points, comment, submission_id = _checked(trust, points, comment, submission_id)
    with transaction(connection):
        item = connection.execute(
            """SELECT i.position, m.case_id, m.method FROM items i JOIN maps m ON m.map_id = i.map_id
               WHERE i.reader_id = ? AND i.map_id = ?""", (reader_id, str(map_id))).fetchone()
        if item is None:
            raise RatingError(f"unknown map id {str(map_id)[:40]!r}", 404)
        if item["case_id"] != case_id:
            raise RatingError(f"unknown case id {str(case_id)[:40]!r} for this map", 404)
        seen = connection.execute("SELECT 1 FROM rating_history WHERE reader_id = ? AND submission_id = ?",
                                  (reader_id, submission_id)).fetchone()
        if seen:
            return {"position": item["position"], "duplicate": True}
        stamp = now()
        values = (reader_id, case_id, item["method"], trust, points, comment)
        connection.execute("""INSERT INTO rating_history (reader_id, case_id, method, trust, points_at_finding,
                              comment, submission_id, submitted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                           (*values, submission_id, stamp))
        connection.execute(
            """INSERT INTO ratings (reader_id, case_id, method, trust, points_at_finding, comment, created, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (reader_id, case_id, method) DO UPDATE SET trust = excluded.trust,
                 points_at_finding = excluded.points_at_finding, comment = excluded.comment,
                 updated = excluded.updated, revision = ratings.revision + 1""", (*values, stamp, stamp))
    return {"position": item["position"], "duplicate": False}


def image_exists(connection: sqlite3.Connection, image_id: str) -> bool:
    return connection.execute("SELECT 1 FROM cases WHERE image_id = ? UNION SELECT 1 FROM maps WHERE image_id = ?",
                              (image_id, image_id)).fetchone() is not None


def register_reader(study: str, name: str, reissue: bool = False, url: str = "http://127.0.0.1:8000") -> dict:
    """Adds (or, with `reissue`, re-keys) reader `name` in study database `study`; returns their login link."""
    if not os.path.exists(study):
        raise FileNotFoundError(f"study database '{study}' not found: make one with `python -m tfxmed study create`")
    connection = connect(study)
    try:
        token = add_reader(connection, name, reissue)
    finally:
        connection.close()
    return {"reader": name.strip(), "token": token, "link": f"{url.rstrip('/')}/login/{token}",
            "note": "shown once: tfxmed keeps only its hash; --reissue makes a new one"}
