"""Message priorities and countdowns, in two steps around the start of the worker.

``priorities.py push STATE_FILE`` runs while no worker consumes: it sends 20 tasks with
``priority=9``, then 20 with ``priority=0``, then one with ``countdown=2``, and saves their
ids to STATE_FILE. Start the worker (with concurrency 1, so completion order is fetch
order), then ``priorities.py collect STATE_FILE`` waits for every result and reports the
order the tasks finished in (by the results' ``date_done``; task i of priority p as
1000 * p + i) and how long after it was
sent the countdown task finished. On Redis, priority 0 is the most urgent: every
priority-0 task should finish before any priority-9 one.

Environment: see tasks.py; ``GET_TIMEOUT`` (seconds, default 60).
"""

import datetime
import json
import pathlib
import sys
import time

from celery.result import AsyncResult

import scenario
from tasks import app, query_posts_db

GET_TIMEOUT = scenario.env_float("GET_TIMEOUT", 60.0)
PER_PRIORITY = 20
COUNTDOWN_S = 2
# kombu's Redis transport keeps priorities 6-9 in this list next to the queue's own.
PRIORITY_9_LIST = scenario.QUEUE + "\x06\x169"


def value_of(priority, i):
    return 1000 * priority + i


def push(state_file):
    sent = {"0": [], "9": []}
    for priority in (9, 0):
        for i in range(PER_PRIORITY):
            sql = "SELECT {}".format(value_of(priority, i))
            sent[str(priority)].append(query_posts_db.apply_async(args=[sql], priority=priority).id)
    countdown = query_posts_db.apply_async(args=["SELECT 'countdown'"], countdown=COUNTDOWN_S)
    state = {"sent": sent, "countdown": {"id": countdown.id, "sent_at": time.time()}}
    pathlib.Path(state_file).write_text(json.dumps(state))
    broker = scenario.broker_redis()
    scenario.report(
        {
            "queued": {
                "base": broker.llen(scenario.QUEUE),
                "priority_9": broker.llen(PRIORITY_9_LIST),
            }
        }
    )


def finished_at(task_id):
    meta = scenario.stored_meta(task_id) or {}
    done = meta.get("date_done")
    return None if done is None else datetime.datetime.fromisoformat(done).timestamp()


def collect(state_file):
    state = json.loads(pathlib.Path(state_file).read_text())
    wrong_values = []
    finished = []
    missing_date_done = 0
    for priority, ids in state["sent"].items():
        for i, task_id in enumerate(ids):
            outcome = scenario.attempt(
                lambda: AsyncResult(task_id, app=app).get(timeout=GET_TIMEOUT)
            )
            if outcome.get("value") != [[value_of(int(priority), i)]]:
                wrong_values.append({"priority": priority, "index": i, "outcome": outcome})
            done = finished_at(task_id)
            if done is None:
                missing_date_done += 1
            else:
                finished.append((done, value_of(int(priority), i)))
    # Each task by its value (1000 * priority + index), in the order the tasks finished.
    order = [value for _, value in sorted(finished)]

    countdown = state["countdown"]
    countdown_outcome = scenario.attempt(
        lambda: AsyncResult(countdown["id"], app=app).get(timeout=GET_TIMEOUT)
    )
    countdown_done = finished_at(countdown["id"])
    scenario.report(
        {
            "wrong_values": wrong_values,
            "missing_date_done": missing_date_done,
            "completion_order": order,
            "countdown": {
                "outcome": countdown_outcome,
                "finished_after_s": None
                if countdown_done is None
                else round(countdown_done - countdown["sent_at"], 3),
                "countdown_s": COUNTDOWN_S,
            },
        }
    )


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("push", "collect"):
        sys.exit("usage: priorities.py push|collect STATE_FILE")
    (push if sys.argv[1] == "push" else collect)(sys.argv[2])


if __name__ == "__main__":
    main()
