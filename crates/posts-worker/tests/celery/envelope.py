"""Celery protocol v2 messages built by hand, as kombu's Redis transport puts them on the
queue list: for pushing raw (and deliberately broken) messages with redis-py, and for
bulk pushes faster than ``apply_async``."""

import base64
import json
import uuid

import scenario

EMPTY_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}

# Celery cuts argsrepr/kwargsrepr to this many characters (task_argsrepr_maxsize).
REPR_MAX = 1024


def encode_body(body_json):
    return base64.b64encode(body_json.encode("utf-8")).decode("ascii")


def task_envelope(task, args, kwargs=None, task_id=None, queue=None):
    """One task message as a dict (headers first, so a cut JSON text still names the id)."""
    task_id = task_id or str(uuid.uuid4())
    kwargs = kwargs or {}
    queue = queue or scenario.QUEUE
    return {
        "headers": {
            "lang": "py",
            "task": task,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": repr(args)[:REPR_MAX],
            "kwargsrepr": repr(kwargs)[:REPR_MAX],
            "origin": "posts-worker-tests",
            "ignore_result": False,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "content-type": "application/json",
        "content-encoding": "utf-8",
        "properties": {
            "correlation_id": task_id,
            "reply_to": str(uuid.uuid4()),
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
        "body": encode_body(json.dumps([args, kwargs, EMPTY_EMBED])),
    }


def task_id_of(envelope):
    return envelope["headers"]["id"]
