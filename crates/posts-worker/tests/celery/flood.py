"""Many tasks pushed at once, each checked to have run exactly once.

Subscribes to every result channel (``PSUBSCRIBE celery-task-meta-*``) before pushing
``FLOOD_COUNT`` ``tasks.query_posts_db`` messages in pipelined batches, then counts how
often each task's result is published until every task has one (or ``GET_TIMEOUT``
passes), waits ``GRACE_S`` more for late duplicates, and reads every stored record.
Task i runs ``FLOOD_SQL`` with ``{i}`` replaced by i; the last column of its first row
must be i, so each result is checked to belong to its own task.

For the mixed-fleet test (a Python and a Rust worker on one queue) and the kill -9 test,
which watches ``PROGRESS_FILE`` (the number of tasks with a result so far, rewritten
as results come in) to know when to kill the worker.

Environment: see tasks.py; ``FLOOD_COUNT`` (default 10000), ``FLOOD_SQL`` (default
``SELECT {i}``), ``GET_TIMEOUT`` (seconds for all results, default 300), ``GRACE_S``
(default 2), ``PROGRESS_FILE`` (optional).
"""

import collections
import json
import os
import pathlib
import threading
import time
import uuid

import envelope
import scenario

FLOOD_COUNT = int(os.environ.get("FLOOD_COUNT") or 10000)
FLOOD_SQL = os.environ.get("FLOOD_SQL") or "SELECT {i}"
GET_TIMEOUT = scenario.env_float("GET_TIMEOUT", 300.0)
GRACE_S = scenario.env_float("GRACE_S", 2.0)
PROGRESS_FILE = os.environ.get("PROGRESS_FILE")
PUSH_BATCH = 1000
SAMPLE = 20
PROBE_ID = "probe-" + str(uuid.uuid4())


class PublishCounter:
    """Counts result publications per task id, from a pattern subscription."""

    def __init__(self):
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.pubsub = scenario.backend_redis().pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(scenario.meta_key("*"))
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()
        self._wait_until_listening()

    def _wait_until_listening(self):
        """Publishes a probe until the listener hears it: nothing is pushed before that."""
        probe = scenario.meta_key(PROBE_ID)
        publisher = scenario.backend_redis()
        deadline = time.monotonic() + 30
        while PROBE_ID not in self.counts:
            if time.monotonic() > deadline:
                raise SystemExit("the result subscription did not start within 30 s")
            publisher.publish(probe, "probe")
            time.sleep(0.05)

    def _listen(self):
        prefix = len(scenario.meta_key(""))
        while not self.stopping.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message is not None:
                with self.lock:
                    self.counts[message["channel"].decode()[prefix:]] += 1

    def seen(self, ids):
        """How many of `ids` have a result published."""
        with self.lock:
            return sum(1 for task_id in ids if task_id in self.counts)

    def stop(self):
        self.stopping.set()
        self.thread.join()
        self.pubsub.close()
        return self.counts


def write_progress(done):
    if PROGRESS_FILE:
        partial = pathlib.Path(PROGRESS_FILE + ".partial")
        partial.write_text(str(done))
        partial.replace(PROGRESS_FILE)


def push_all(ids):
    broker = scenario.broker_redis()
    pipe = broker.pipeline(transaction=False)
    for i, task_id in enumerate(ids):
        sql = FLOOD_SQL.replace("{i}", str(i))
        message = envelope.task_envelope("tasks.query_posts_db", [sql], task_id=task_id)
        pipe.lpush(scenario.QUEUE, json.dumps(message))
        if (i + 1) % PUSH_BATCH == 0:
            pipe.execute()
    pipe.execute()


def stored_records(ids):
    backend = scenario.backend_redis()
    records = []
    for start in range(0, len(ids), PUSH_BATCH):
        batch = ids[start : start + PUSH_BATCH]
        for raw in backend.mget([scenario.meta_key(task_id) for task_id in batch]):
            records.append(None if raw is None else json.loads(raw))
    return records


def belongs_to(record, i):
    try:
        return record["status"] == "SUCCESS" and record["result"][0][-1] == i
    except (KeyError, IndexError, TypeError):
        return False


def main():
    ids = [str(uuid.uuid4()) for _ in range(FLOOD_COUNT)]
    counter = PublishCounter()
    started = time.monotonic()
    push_all(ids)
    pushed_s = time.monotonic() - started

    write_progress(0)
    while counter.seen(ids) < FLOOD_COUNT and time.monotonic() - started < GET_TIMEOUT:
        write_progress(counter.seen(ids))
        time.sleep(0.05)
    write_progress(counter.seen(ids))
    all_seen_s = time.monotonic() - started
    time.sleep(GRACE_S)
    counts = counter.stop()

    records = stored_records(ids)
    statuses = collections.Counter(
        "(none)" if record is None else record.get("status") for record in records
    )
    workers = collections.Counter(
        "(none)" if record is None else str(record.get("worker")) for record in records
    )
    scenario.report(
        {
            "count": FLOOD_COUNT,
            "push_s": round(pushed_s, 3),
            "all_published_s": round(all_seen_s, 3),
            "publications": dict(
                collections.Counter(str(counts.get(task_id, 0)) for task_id in ids)
            ),
            "never_published": [i for i, task_id in enumerate(ids) if task_id not in counts][
                :SAMPLE
            ],
            "published_more_than_once": [
                i for i, task_id in enumerate(ids) if counts.get(task_id, 0) > 1
            ][:SAMPLE],
            "stored_status": dict(statuses),
            "wrong_results": [
                {"index": i, "record": record}
                for i, record in enumerate(records)
                if not belongs_to(record, i)
            ][:SAMPLE],
            "by_worker": dict(workers),
            "queue_left": scenario.broker_redis().llen(scenario.QUEUE),
        }
    )


if __name__ == "__main__":
    main()
