"""The study database (`tfxmed.reader_study.db`): readers' own blinded orders, hashed tokens, ratings that
are updated with history, and refusals."""

import sqlite3

import pytest

from tfxmed.reader_study import db


def _open(path):
    return db.connect(path)


def test_each_reader_gets_every_map_once_cases_together_in_their_own_order(synthetic):
    connection = _open(synthetic)
    orders = []
    for name in ("ann", "bob", "cy"):
        db.add_reader(connection, name)
        reader_id = connection.execute("SELECT reader_id FROM readers WHERE name = ?", (name,)).fetchone()[0]
        rows = connection.execute("""SELECT m.case_id, m.map_id FROM items i JOIN maps m ON m.map_id = i.map_id
                                     WHERE i.reader_id = ? ORDER BY i.position""", (reader_id,)).fetchall()
        assert sorted(r["map_id"] for r in rows) == sorted(r[0] for r in connection.execute("SELECT map_id FROM maps"))
        cases = [r["case_id"] for r in rows]
        assert all(len(set(cases[k:k + 3])) == 1 for k in range(0, len(cases), 3))  # a case's 3 maps in a row
        orders.append([r["map_id"] for r in rows])
    assert len({tuple(order) for order in orders}) > 1  # randomised per reader (3 readers: same order 1 in 10^4)
    assert db.progress(connection, 1) == {"total": 12, "rated": 0, "cases": 4, "cases_done": 0}
    assert db.first_unrated(connection, 1) == 0


def test_tokens_are_random_and_stored_only_as_their_hash(synthetic):
    connection = _open(synthetic)
    token = db.add_reader(connection, "ann")
    other = db.add_reader(connection, "bob")
    assert token != other and len(token) >= 32
    assert db.reader_for_token(connection, token)["name"] == "ann"
    assert db.reader_for_token(connection, token + "x") is None
    connection.close()
    raw = open(synthetic, "rb").read()  # closing the last connection checkpoints the WAL into the file
    assert token.encode() not in raw and db.token_hash(token).encode() in raw
    with pytest.raises(db.RatingError, match="reader 'ann' exists; pass --reissue"):
        db.register_reader(synthetic, "ann")
    again = db.register_reader(synthetic, "ann", reissue=True, url="http://host:9/")
    assert again["link"] == f"http://host:9/login/{again['token']}"
    connection = _open(synthetic)
    assert db.reader_for_token(connection, token) is None  # the old link stops working
    assert db.reader_for_token(connection, again["token"])["name"] == "ann"


def _first_item(connection, name="ann"):
    db.add_reader(connection, name)
    reader_id = connection.execute("SELECT reader_id FROM readers WHERE name = ?", (name,)).fetchone()[0]
    return reader_id, db.reader_item(connection, reader_id, 0)


def test_a_rating_is_recorded_once_per_submission_and_updated_with_history(synthetic):
    connection = _open(synthetic)
    reader_id, item = _first_item(connection)
    rate = lambda trust, submission, **kw: db.submit_rating(  # noqa: E731
        connection, reader_id, item["case_id"], item["map_id"], trust, submission_id=submission, **kw)
    assert rate(4, "submission-1", points="yes", comment=" fine ") == {"position": 0, "duplicate": False}
    assert rate(4, "submission-1") == {"position": 0, "duplicate": True}  # a double-click
    row = connection.execute("SELECT * FROM ratings").fetchone()
    assert (row["trust"], row["points_at_finding"], row["comment"], row["revision"]) == (4, "yes", "fine", 1)
    assert rate("2", "submission-2") == {"position": 0, "duplicate": False}  # re-rated: one row, revision 2
    rows = connection.execute("SELECT * FROM ratings").fetchall()
    assert len(rows) == 1 and (rows[0]["trust"], rows[0]["revision"], rows[0]["points_at_finding"]) == (2, 2, None)
    assert rows[0]["created"] < rows[0]["updated"] or rows[0]["created"] == rows[0]["updated"]
    history = connection.execute("SELECT trust FROM rating_history ORDER BY submitted").fetchall()
    assert [h["trust"] for h in history] == [4, 2]
    assert db.reader_item(connection, reader_id, 0)["trust"] == 2
    assert db.first_unrated(connection, reader_id) == 1
    assert db.progress(connection, reader_id)["rated"] == 1


@pytest.mark.parametrize("trust, points, comment, submission, message", [
    (0, None, "", "submission-1", "trust must be from 1 to 5; got 0"),
    (6, None, "", "submission-1", "trust must be from 1 to 5; got 6"),
    ("3.5", None, "", "submission-1", "trust must be a whole number"),
    ("", None, "", "submission-1", "trust must be a whole number"),
    (3, "maybe", "", "submission-1", "must be yes, no or unsure; got 'maybe'"),
    (3, None, "x" * 2001, "submission-1", "at most 2000 characters"),
    (3, None, "", "short", "submission id is missing or malformed"),
])
def test_bad_values_are_refused_with_400(synthetic, trust, points, comment, submission, message):
    connection = _open(synthetic)
    reader_id, item = _first_item(connection)
    with pytest.raises(db.RatingError, match=message) as refused:
        db.submit_rating(connection, reader_id, item["case_id"], item["map_id"], trust, points, comment, submission)
    assert refused.value.status == 400
    assert connection.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0


def test_unknown_or_mismatched_ids_are_refused_with_404(synthetic):
    connection = _open(synthetic)
    reader_id, item = _first_item(connection)
    other_case = connection.execute("SELECT case_id FROM cases WHERE case_id != ?", (item["case_id"],)).fetchone()[0]
    for case_id, map_id, message in ((item["case_id"], "nope", "unknown map id 'nope'"),
                                     (other_case, item["map_id"], "unknown case id"),
                                     (item["case_id"], "' OR 1=1 --", "unknown map id")):
        with pytest.raises(db.RatingError, match=message) as refused:
            db.submit_rating(connection, reader_id, case_id, map_id, 3, submission_id="submission-1")
        assert refused.value.status == 404
    with pytest.raises(sqlite3.IntegrityError):  # the schema refuses what the checks would, too
        connection.execute("INSERT INTO ratings VALUES (?, ?, 'ig', 9, NULL, '', 'now', 'now', 1)",
                           (reader_id, item["case_id"]))


def test_connections_use_wal_and_images_are_looked_up_by_id(synthetic):
    connection = _open(synthetic)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    image_id = connection.execute("SELECT image_id FROM maps").fetchone()[0]
    assert db.image_exists(connection, image_id) and not db.image_exists(connection, "0" * 32)
    assert db.files_dir("/a/b/study.db") == "/a/b/study_files"
