"""The posts tasks as a plain Python Celery module, shaped like the upstream example.

Two uses, as upstream's ``tasks.py`` had:

* clients import it (``from tasks import query_posts_db``) and call ``.delay(...)``, so
  the scenario scripts run exactly the code a Python user runs;
* ``celery -A tasks worker -Q celery`` runs it as a Python worker: the reference the
  scenarios are checked against, and the Python half of the mixed-fleet test.

Environment:

``BROKER_URL``      the Redis URL of the broker (required)
``RESULT_BACKEND``  the result backend URL (default: ``BROKER_URL``, as upstream)
``CELERY_QUEUE``    the queue tasks are sent to (default ``celery``)
``POSTS_DB``        the SQLite posts database (worker only, opened read-only)
``CELERY_READY_FILE``  a path the worker creates once it consumes (worker only)
"""

import collections
import contextlib
import datetime
import json
import os
import pathlib
import re
import sqlite3
import sys
import urllib.parse

import redis
from celery import Celery, signals

BROKER_URL = os.environ.get("BROKER_URL") or sys.exit(
    "BROKER_URL is not set: point it at the Redis the worker uses, e.g. redis://127.0.0.1:6379/0"
)
RESULT_BACKEND = os.environ.get("RESULT_BACKEND") or BROKER_URL

app = Celery("tasks", backend=RESULT_BACKEND, broker=BROKER_URL)
app.conf.update(
    task_default_queue=os.environ.get("CELERY_QUEUE") or "celery",
    # Results name the worker that stored them, so the mixed-fleet test can tell who ran what.
    result_extended=True,
    broker_connection_retry_on_startup=True,
)


@signals.worker_ready.connect
def _announce_ready(**_):
    ready_file = os.environ.get("CELERY_READY_FILE")
    if ready_file:
        pathlib.Path(ready_file).write_text("ready\n")


def _posts_db():
    path = os.environ.get("POSTS_DB")
    if not path:
        raise RuntimeError("POSTS_DB is not set: the worker needs the posts database path")
    uri = "file:{}?mode=ro".format(urllib.parse.quote(path))
    return contextlib.closing(sqlite3.connect(uri, uri=True))


def _require_str(name, value):
    if not isinstance(value, str):
        raise TypeError("{} must be a string, got {}".format(name, type(value).__name__))


def _require_range(from_, to):
    _require_str("from_", from_)
    _require_str("to", to)
    if from_ > to:
        raise ValueError("from_ ({!r}) must not be after to ({!r})".format(from_, to))


def _post_text(blob):
    if not blob:
        return ""
    return json.loads(blob).get("text") or ""


def _posts_in_range(conn, from_, to):
    return conn.execute(
        "SELECT platform, post_blob FROM posts WHERE created_at BETWEEN ? AND ?",
        (from_, to),
    )


@app.task
def query_posts_db(query):
    _require_str("query", query)
    # The database is opened read-only; this only names the mistake more clearly.
    if not re.match(r"\s*(SELECT|WITH)\b", query, re.IGNORECASE):
        raise ValueError("query must be one SELECT statement")
    with _posts_db() as conn:
        return [list(row) for row in conn.execute(query)]


@app.task
def substring_matches_by_platform(match, from_, to):
    _require_str("match", match)
    _require_range(from_, to)
    needle = match.lower()
    per_platform = collections.Counter()
    total_rows = 0
    with _posts_db() as conn:
        for platform, blob in _posts_in_range(conn, from_, to):
            total_rows += 1
            if platform is not None and needle in _post_text(blob).lower():
                per_platform[platform] += 1
    return {**dict(sorted(per_platform.items())), "total_rows": total_rows}


# A stand-in for a real NER model (none can be downloaded here): runs of capitalised words.
_ENTITY = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*)*")
_NOT_ENTITIES = {"I", "The", "A", "An", "And", "But", "So", "This", "That", "It", "RT"}


def _entities(text):
    found = set()
    for candidate in _ENTITY.findall(text):
        candidate = candidate.rstrip(".'’-")
        if candidate and candidate not in _NOT_ENTITIES:
            found.add(candidate)
    return found


@app.task
def count_top_named_entities(k, from_, to, result_key):
    if not isinstance(k, int) or isinstance(k, bool):
        raise TypeError("k must be an integer, got {}".format(type(k).__name__))
    _require_range(from_, to)
    _require_str("result_key", result_key)
    posts_per_entity = collections.Counter()
    with _posts_db() as conn:
        for _platform, blob in _posts_in_range(conn, from_, to):
            posts_per_entity.update(_entities(_post_text(blob)))
    ranked = sorted(posts_per_entity.items(), key=lambda item: (-item[1], item[0]))[:k]
    report = {
        "top_named_entities": [[entity, n] for entity, n in ranked],
        "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    redis.Redis.from_url(BROKER_URL).set(result_key, json.dumps(report))
    return True


# The later upstream deployment (examples/combined) names the same tasks
# `sandbox_worker.tasks.*`; a Python worker answers to those names too.
for _task in (query_posts_db, substring_matches_by_platform, count_top_named_entities):
    app.task(name="sandbox_worker.tasks." + _task.name.rsplit(".", 1)[-1])(_task.run)
