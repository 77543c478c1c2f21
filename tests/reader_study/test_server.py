"""The readers' pages (`tfxmed.reader_study.server`) through Flask's test client: signing in, blinded
pages, CSRF, refusals with clear 4xx, the image route against path traversal, readers seeing only their
own ratings, and a real threaded server whose log never holds a token.

Then in a real headless Chromium (Debian's chromium and chromium-driver, via Selenium): two readers sign
in with their links, rate with the mouse and the keyboard, one closes the browser and resumes, and the
database and the results hold exactly what was clicked. A screenshot of the rating page is saved (set
TFXMED_STUDY_SCREENSHOT=PATH to keep a copy, e.g. docs/images/reader_study.png)."""

import csv
import json
import logging
import os
import re
import shutil
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


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                   reason="needs Debian's chromium and chromedriver (apt-get install chromium-driver)")


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1000",
                 "--disable-gpu", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    return driver


def _copy(study: str, folder) -> str:
    target = str(folder / "study.db")
    shutil.copy(study, target)
    shutil.copytree(db.files_dir(study), db.files_dir(target))
    return target


class Reader:
    """One reader's browser, recording what they chose for each map id."""

    def __init__(self, link: str, chosen: dict):
        self.driver, self.link, self.chosen = _browser(), link, chosen
        self.driver.get(link)

    def find(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def heading(self) -> str:
        return self.find("#case-progress").text

    def map_id(self) -> str:
        return self.find('input[name="map"]').get_attribute("value")

    def wait_for_new_page(self, old_map: str) -> None:
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        # The page is replaced under the check: an element may go stale between finding and reading it.
        ignored = (NoSuchElementException, StaleElementReferenceException)
        WebDriverWait(self.driver, 10, ignored_exceptions=ignored).until(
            lambda d: "/done" in d.current_url or (d.find_elements("css selector", 'input[name="map"]') and
                                                   self.map_id() != old_map))

    def rate_with_mouse(self, trust: int, points: str, comment: str = "", double_click: bool = False) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        old = self.map_id()
        self.find(f'label:has(#trust-{trust}) span').click()
        self.find(f'label:has(#points-{points}) span').click()
        if comment:
            self.find("#comment").send_keys(comment)
        if double_click:
            ActionChains(self.driver).double_click(self.find("#save")).perform()
        else:
            self.find("#save").click()
        self.chosen[old] = (trust, points, comment)
        self.wait_for_new_page(old)

    def rate_with_keys(self, trust: int, points_key: str, submit_key) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        old = self.map_id()
        ActionChains(self.driver).send_keys(str(trust), points_key, submit_key).perform()
        self.chosen[old] = (trust, {"y": "yes", "n": "no", "u": "unsure"}[points_key], "")
        self.wait_for_new_page(old)

    def close(self) -> None:
        self.driver.quit()


@pytest.mark.slow  # ~35 s on 2 shared cores: two Chromium sessions and the tiny run's study
@needs_browser
def test_two_readers_rate_with_mouse_and_keyboard_and_one_resumes_in_chromium(built_study, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from tfxmed.reader_study.analysis import write_results

    study = _copy(built_study[0], tmp_path)
    with running_server(study) as url:
        links = {name: db.register_reader(study, name, url=url)["link"] for name in ("ann", "bob")}
        chosen = {"ann": {}, "bob": {}}  # reader → map id → (trust, pointing, comment), as clicked
        ann = Reader(links["ann"], chosen["ann"])
        try:
            assert ann.heading() == "Case 1 / 8" and "Explanation A" in ann.find(".sub").text
            ann.find('label:has(#trust-4) span').click()
            ann.find('label:has(#points-yes) span').click()
            screenshot = str(tmp_path / "rating_page.png")
            assert ann.driver.save_screenshot(screenshot) and open(screenshot, "rb").read(4) == b"\x89PNG"
            if os.environ.get("TFXMED_STUDY_SCREENSHOT"):
                shutil.copy(screenshot, os.environ["TFXMED_STUDY_SCREENSHOT"])
            ann.rate_with_mouse(4, "yes", "clear")
            ann.rate_with_keys(2, "n", Keys.ARROW_RIGHT)
            ann.rate_with_keys(5, "u", Keys.ENTER)
            assert ann.heading() == "Case 2 / 8" and "1 / 8 cases rated" in ann.find("#progress").text
            ann.rate_with_mouse(3, "no", double_click=True)  # a double-click saves once
        finally:
            ann.close()  # the browser is closed: the session cookie is gone with it

        bob = Reader(links["bob"], chosen["bob"])
        try:
            assert bob.heading() == "Case 1 / 8" and not bob.find("#trust-4").is_selected()  # ann's ratings unseen
            bob.rate_with_keys(1, "n", Keys.ARROW_RIGHT)
            first, second = list(bob.chosen)[0], bob.map_id()
            ActionChains(bob.driver).send_keys(Keys.ARROW_LEFT).perform()  # back to the first: re-rate it
            bob.wait_for_new_page(second)
            assert bob.map_id() == first and bob.find("#trust-1").is_selected()
            bob.rate_with_keys(3, "u", Keys.ARROW_RIGHT)
            bob.rate_with_mouse(5, "yes")
        finally:
            bob.close()

        ann = Reader(links["ann"], chosen["ann"])  # a new browser: the link signs in again and resumes
        try:
            assert ann.heading() == "Case 2 / 8" and "Explanation B" in ann.find(".sub").text
            ann.rate_with_keys(1, "y", Keys.ENTER)
        finally:
            ann.close()

    connection = db.connect(study)
    rows = connection.execute("""SELECT rd.name, m.map_id, r.trust, r.points_at_finding, r.comment, r.revision
                                 FROM ratings r JOIN readers rd ON rd.reader_id = r.reader_id
                                 JOIN maps m ON m.case_id = r.case_id AND m.method = r.method""").fetchall()
    stored = {(row["name"], row["map_id"]): (row["trust"], row["points_at_finding"], row["comment"]) for row in rows}
    expected = {(name, map_id): value for name, maps in chosen.items() for map_id, value in maps.items()}
    assert stored == expected and len(rows) == 7
    assert [row["revision"] for row in rows if row["map_id"] == first and row["name"] == "bob"] == [2]
    assert connection.execute("SELECT COUNT(*) FROM rating_history").fetchone()[0] == 8  # bob's re-rating kept
    results = write_results(study, str(tmp_path / "results"))
    table = list(csv.DictReader(open(results["csv"], encoding="utf-8")))
    assert sorted((r["reader"], int(r["trust"])) for r in table) == sorted((k[0], v[0]) for k, v in expected.items())
