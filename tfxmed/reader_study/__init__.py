"""A reader study: clinicians rate each explanation's trustworthiness (human trust score, 1–5) in a browser.

`cases` builds a study database from a run's split, `db` holds it (SQLite), `server` serves the readers'
pages (Flask), `analysis` writes the results (mean HTS with CIs, Cohen's and Fleiss' κ, HTS against IoU
and the pointing game, a CSV and an HTML section for the run report).
"""

from tfxmed.reader_study.analysis import write_results
from tfxmed.reader_study.cases import DEFAULT_METHODS, create_study
from tfxmed.reader_study.db import RatingError, register_reader
from tfxmed.reader_study.server import create_app, running_server, serve

__all__ = ["DEFAULT_METHODS", "create_study", "register_reader", "RatingError", "create_app", "serve",
           "running_server", "write_results"]
