"""A Phrase is its English text everywhere a str goes, and carries what a page words it from."""

from __future__ import annotations

import copy
import json
import pickle

from appliance.phrase import Phrase, wording


def test_a_phrase_is_its_text_and_keeps_its_code_through_copies() -> None:
    said = Phrase("disk full: 3 MB needed", "disk_full", need=3)
    assert said == "disk full: 3 MB needed" and json.dumps([said]) == '["disk full: 3 MB needed"]'
    for again in (pickle.loads(pickle.dumps(said)), copy.deepcopy(said)):
        assert again == said and wording(again) == {"code": "disk_full", "params": {"need": 3}}
    assert wording("plain English") == {"code": "", "params": {}}
    # text joined onto a phrase is plain text again: a caller re-wraps it (see app.py)
    assert wording(said + "; more") == {"code": "", "params": {}}
