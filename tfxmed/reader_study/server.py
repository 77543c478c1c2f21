"""The readers' web pages (Flask): `python -m tfxmed study serve study.db [--port 8000]`.

    GET  /login/<token>   signs a reader in (a signed session cookie) and forgets the token from the address bar
    GET  /                resumes at the reader's first unrated explanation (or the end page)
    GET  /item/<n>        case and explanation n of the reader's own order, with their own rating pre-filled
    POST /rate            records a rating (CSRF token required; 400 bad value, 404 unknown case or map)
    GET  /images/<id>.png a rendered image of the study, by its random id (nothing else is served)
    POST /logout          ends the session

Every page is server-rendered with a little vanilla JavaScript for the keyboard (1–5, y/n/u, arrows).
Each request opens its own SQLite connection, so concurrent readers are serialised by SQLite's write
lock, not by the web server.
"""

from __future__ import annotations

import contextlib
import datetime
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Iterator

from flask import Flask, abort, g, jsonify, redirect, render_template, request, send_from_directory, session, url_for
from werkzeug.serving import WSGIRequestHandler, make_server

from tfxmed.reader_study import db

__all__ = ["ANCHORS", "RedactedLog", "create_app", "serve", "running_server"]

ANCHORS = {1: "Not at all", 2: "Slightly", 3: "Moderately", 4: "Mostly", 5: "Completely"}
IMAGE_NAME = re.compile(r"[0-9a-f]{32}\.png")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOGIN_PATH = re.compile(r"/login/[^/?#\s]+")


class RedactedLog(WSGIRequestHandler):
    """Logs each request with its login token replaced: a server log must not hold credentials."""

    def log_request(self, code="-", size="-") -> None:
        self.path = LOGIN_PATH.sub("/login/<token>", self.path)
        super().log_request(code, size)


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_app(study: str) -> Flask:
    """The Flask app serving study database `study` (made by `create_study`)."""
    if not os.path.exists(study):
        raise FileNotFoundError(f"study database '{study}' not found: make one with `python -m tfxmed study create`")
    study = os.path.abspath(study)
    connection = db.connect(study)
    try:
        secret, class_names = db.meta(connection, "secret_key"), json.loads(db.meta(connection, "class_names"))
    finally:
        connection.close()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret, SESSION_COOKIE_NAME="tfxmed_study", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", PERMANENT_SESSION_LIFETIME=datetime.timedelta(days=30),
                      MAX_CONTENT_LENGTH=64 * 1024)
    files = db.files_dir(study)

    def connection_() -> db.sqlite3.Connection:
        if "connection" not in g:
            g.connection = db.connect(study)
        return g.connection

    @app.teardown_appcontext
    def close(_error):
        found = g.pop("connection", None)
        if found is not None:
            found.close()

    @app.after_request
    def headers(response):
        response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self'; style-src 'self'; "
                                                       "script-src 'self'; frame-ancestors 'none'; form-action 'self'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response

    def wants_json() -> bool:
        return request.accept_mimetypes.best == "application/json"

    @app.errorhandler(_Refused)
    def refused(error: _Refused):
        if wants_json():
            return jsonify(error=str(error)), error.status
        return render_template("message.html", title=f"Error {error.status}", message=str(error)), error.status

    @app.errorhandler(404)
    def not_found(_error):
        return refused(_Refused(404, "No such page."))

    def reader() -> dict:
        reader_id = session.get("reader")
        row = connection_().execute("SELECT reader_id, name FROM readers WHERE reader_id = ?",
                                    (reader_id,)).fetchone() if reader_id else None
        if row is None:
            raise _Refused(401, "Please open the personal link you were given to sign in.")
        return dict(row)

    def check_csrf() -> None:
        expected, sent = session.get("csrf", ""), request.form.get("csrf", "")
        if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
            raise _Refused(403, "The form's security token is missing or stale: reload the page and try again.")

    @app.get("/login/<token>")
    def login(token: str):
        row = db.reader_for_token(connection_(), token)
        if row is None:
            raise _Refused(403, "This sign-in link is not valid (it may have been replaced): ask for a new one.")
        session.clear()
        session.permanent = True
        session.update(reader=row["reader_id"], csrf=secrets.token_urlsafe(32))
        return redirect(url_for("resume"))

    @app.post("/logout")
    def logout():
        reader()
        check_csrf()
        session.clear()
        return render_template("message.html", title="Signed out",
                               message="You are signed out. Your ratings are saved.")

    @app.get("/")
    def resume():
        position = db.first_unrated(connection_(), reader()["reader_id"])
        return redirect(url_for("done") if position is None else url_for("item", position=position))

    @app.get("/done")
    def done():
        who = reader()
        return render_template("message.html", title="Thank you", reader=who, finished=True,
                               progress=db.progress(connection_(), who["reader_id"]),
                               message="Every explanation has your rating. You can go back to any case to change it.")

    @app.get("/item/<int:position>")
    def item(position: int):
        who = reader()
        found = db.reader_item(connection_(), who["reader_id"], position)
        if found is None:
            raise _Refused(404, f"There is no item {position} in your list.")
        found["class_name"] = class_names[found["explained_class"]]
        return render_template("rate.html", reader=who, item=found, anchors=ANCHORS, letter=LETTERS[
            found["explanation_number"] - 1], progress=db.progress(connection_(), who["reader_id"]),
            csrf=session["csrf"], submission=secrets.token_urlsafe(16), answers=db.POINTING_ANSWERS)

    @app.post("/rate")
    def rate():
        who = reader()
        check_csrf()
        form = request.form
        try:
            result = db.submit_rating(connection_(), who["reader_id"], form.get("case", ""), form.get("map", ""),
                                      form.get("trust", ""), form.get("points"), form.get("comment", ""),
                                      form.get("submission", ""))
        except db.RatingError as error:
            raise _Refused(error.status, str(error)) from None
        following = db.reader_item(connection_(), who["reader_id"], result["position"] + 1)
        target = url_for("item", position=result["position"] + 1) if following else url_for("resume")
        if wants_json():
            return jsonify(ok=True, duplicate=result["duplicate"], next=target)
        return redirect(target, 303)

    @app.get("/images/<name>")
    def image(name: str):
        reader()
        # Only a name of the study's own shape, listed in its database, is looked up, in its own folder.
        if not IMAGE_NAME.fullmatch(name) or not db.image_exists(connection_(), name[:-4]):
            abort(404)
        return send_from_directory(files, name, mimetype="image/png", max_age=3600)

    return app


def serve(study: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serves the study until interrupted (a threaded WSGI server; SQLite serialises the writes)."""
    server = make_server(host, port, create_app(study), threaded=True, request_handler=RedactedLog)
    print(f"serving {study} on http://{host}:{server.server_port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@contextlib.contextmanager
def running_server(study: str, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serves `study` on a background thread (a free port by default); yields its base URL."""
    server = make_server(host, port, create_app(study), threaded=True, request_handler=RedactedLog)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
