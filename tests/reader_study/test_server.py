"""The readers' pages (`tfxmed.reader_study.server`) through Flask's test client: signing in, blinded
pages, CSRF, refusals with clear 4xx, the image route against path traversal, readers seeing only their
own ratings, and a real threaded server whose log never holds a token."""

import json
import logging
import re
import urllib.request

import pytest

from tests.reader_study.conftest import form_fields
from tfxmed.reader_study import db
from tfxmed.reader_study.server import create_app, running_server


@pytest.fixture
def app(synthetic):
    app = create_app(synthetic)
    app.testing = True
    return app


def _signed_in(app, study, name):
    client = app.test_client()
    token = db.register_reader(study, name)["token"]
    response = client.get(f"/login/{token}")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    return client


def _rate(client, position, trust, **extra):
    fields = form_fields(client.get(f"/item/{position}").data)
    return client.post("/rate", data={**fields, "trust": trust, **extra})


def test_pages_need_a_valid_link(app, synthetic):
    client = app.test_client()
    for path in ("/", "/item/0", "/done", "/images/" + "0" * 32 + ".png"):
        response = client.get(path)
        assert response.status_code == 401 and b"personal link" in response.data, path
    assert client.get("/login/not-a-token").status_code == 403
    assert client.post("/rate", data={"trust": 3}).status_code == 401


def test_the_rating_page_is_blinded_and_resumes_where_the_reader_left(app, synthetic):
    client = _signed_in(app, synthetic, "ann")
    assert client.get("/").headers["Location"] == "/item/0"
    page = client.get("/item/0")
    text = page.data.decode()
    assert page.status_code == 200 and "Case 1 / 4" in text and "Explanation A" in text
    assert "0 / 4 cases rated" in text
    connection = db.connect(synthetic)
    secrets_on_page = [row[0] for row in connection.execute("SELECT method FROM maps")]
    assert not any(re.search(rf"\b{method}\b", text, re.I) for method in secrets_on_page)  # methods blinded
    assert "split_index" not in text and "patient" not in text.lower()
    for header in ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy", "X-Content-Type-Options"):
        assert header in page.headers
    response = _rate(client, 0, 4, points="yes")
    assert response.status_code == 303 and response.headers["Location"] == "/item/1"
    assert client.get("/").headers["Location"] == "/item/1"  # resume
    assert re.search(r'id="trust-4" required\s+checked', client.get("/item/0").data.decode())
    for position in range(1, 12):
        _rate(client, position, 1 + position % 5)
    assert client.get("/").headers["Location"] == "/done"
    assert "4 / 4 cases rated" in client.get("/done").data.decode()
    assert client.get("/item/12").status_code == 404


def test_state_changes_need_the_csrf_token(app, synthetic):
    client = _signed_in(app, synthetic, "ann")
    fields = form_fields(client.get("/item/0").data)
    for csrf in ("", "forged", None):
        data = {**fields, "trust": 3, "csrf": csrf}
        if csrf is None:
            del data["csrf"]
        response = client.post("/rate", data=data)
        assert response.status_code == 403 and b"security token" in response.data
    other = _signed_in(app, synthetic, "bob")  # another reader's token is not this session's
    assert other.post("/rate", data={**fields, "trust": 3}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert db.connect(synthetic).execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0


@pytest.mark.parametrize("change, status, message", [
    ({"trust": "0"}, 400, "trust must be from 1 to 5; got 0"),
    ({"trust": "6"}, 400, "trust must be from 1 to 5; got 6"),
    ({"trust": "five"}, 400, "whole number"),
    ({"points": "perhaps"}, 400, "yes, no or unsure"),
    ({"map": "f" * 16}, 404, "unknown map id"),
    ({"case": "0" * 16}, 404, "unknown case id"),
])
def test_bad_ratings_and_unknown_ids_get_a_clear_4xx(app, synthetic, change, status, message):
    client = _signed_in(app, synthetic, "ann")
    fields = form_fields(client.get("/item/0").data)
    response = client.post("/rate", data={**fields, "trust": "3", **change})
    assert response.status_code == status and message in response.data.decode()
    answer = client.post("/rate", data={**fields, "trust": "3", **change}, headers={"Accept": "application/json"})
    assert answer.status_code == status and message in answer.get_json()["error"]


def test_a_double_click_counts_once(app, synthetic):
    client = _signed_in(app, synthetic, "ann")
    fields = form_fields(client.get("/item/0").data)
    answers = [client.post("/rate", data={**fields, "trust": 5}, headers={"Accept": "application/json"}).get_json()
               for _ in range(3)]
    assert [a["duplicate"] for a in answers] == [False, True, True] and answers[0]["next"] == "/item/1"
    connection = db.connect(synthetic)
    assert connection.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 1
    assert connection.execute("SELECT COUNT(*) FROM rating_history").fetchone()[0] == 1


def test_readers_see_only_their_own_ratings(app, synthetic):
    ann, bob = _signed_in(app, synthetic, "ann"), _signed_in(app, synthetic, "bob")
    _rate(ann, 0, 5, comment="ann's private note")
    map_id = form_fields(ann.get("/item/0").data)["map"]
    connection = db.connect(synthetic)
    bob_id = connection.execute("SELECT reader_id FROM readers WHERE name = 'bob'").fetchone()[0]
    position = connection.execute("SELECT position FROM items WHERE reader_id = ? AND map_id = ?",
                                  (bob_id, map_id)).fetchone()[0]
    page = bob.get(f"/item/{position}").data.decode()  # the same explanation, in bob's order
    assert form_fields(page)["map"] == map_id
    assert "ann's private note" not in page and "checked" not in page and ">ann<" not in page
    assert bob.get("/").headers["Location"] == "/item/0"


def test_the_image_route_serves_only_the_studys_images(app, synthetic, tmp_path):
    client = _signed_in(app, synthetic, "ann")
    page = client.get("/item/0").data.decode()
    names = re.findall(r'src="/images/([0-9a-f]{32}\.png)"', page)
    assert len(names) == 2
    image = client.get(f"/images/{names[0]}")
    assert image.status_code == 200 and image.data[:4] == b"\x89PNG" and image.mimetype == "image/png"
    (tmp_path / "secret.txt").write_text("secret")
    database = open(synthetic, "rb").read(16)
    for path in ("/images/../study.db", "/images/..%2Fstudy.db", "/images/..%2F..%2Fsecret.txt",
                 "/images/%2E%2E%2Fsecret.txt", "/images/..%5Csecret.txt", "/images//etc/passwd",
                 "/images/%2Fetc%2Fpasswd", "/images/" + "a" * 32 + ".png", "/images/" + names[0].upper(),
                 "/images/" + names[0] + "%00.txt", "/images/study.db", "/static/../study.db",
                 "/static/..%2F..%2Fstudy.db"):
        response = client.get(path)
        assert response.status_code in (404, 400), path
        assert database not in response.data and b"secret" != response.data and b"root:" not in response.data


def test_a_threaded_server_keeps_tokens_out_of_its_log(synthetic, caplog):
    token = db.register_reader(synthetic, "ann")["token"]
    with caplog.at_level(logging.INFO, logger="werkzeug"), running_server(synthetic) as url:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        page = opener.open(f"{url}/login/{token}").read().decode()
        assert "Case 1 / 4" in page
        fields = form_fields(page)
        request = urllib.request.Request(f"{url}/rate", data=f"csrf={fields['csrf']}&case={fields['case']}&map="
                                         f"{fields['map']}&submission={fields['submission']}&trust=2".encode(),
                                         headers={"Accept": "application/json"})
        assert json.loads(opener.open(request).read())["next"] == "/item/1"
    assert "/login/<token>" in caplog.text and token not in caplog.text
