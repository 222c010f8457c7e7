"""Every reader, given truncated, corrupted or random bytes, raises its own typed error.

Nothing else may escape (no IndexError, ValueError, struct.error ...), nothing may hang, and the
WSQ decoder's crashes on corrupt data must stay in its own process. Transaction errors must say
which record they are about.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from records_support import FIXTURES

from appliance.cli.records import validate_command
from appliance.domain import Minutia, MinutiaType
from appliance.errors import RecordError
from appliance.records.errors import TemplateError, TransactionError, WsqError
from appliance.records.template import (
    MinutiaeTemplate,
    decode_ansi378,
    decode_iso19794_2,
    encode_ansi378,
    encode_iso19794_2,
)
from appliance.records.transaction import Transaction, read_transaction
from appliance.records.validate import validate_transaction
from appliance.records.wsq import decode_wsq, read_wsq_header

pytestmark = pytest.mark.timeout(240)

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_MINUTIAE = [Minutia(5.0 + 3 * i, 7.0 + 2 * i, 0.2 * i, MinutiaType.ENDING, 50) for i in range(12)]
_VIEW = dict(width=100, height=100, ppi=500, position=3, impression_type=0, finger_quality=60)
ISO_RECORD = encode_iso19794_2(_MINUTIAE, **_VIEW)
ANSI_RECORD = encode_ansi378(_MINUTIAE, **_VIEW)
WSQ_CODESTREAM = (FIXTURES / "wsq/75/cmp00010.wsq").read_bytes()
TRANSACTION = (FIXTURES / "ansi_nist/type-14-amp-nqm-utf8.an2").read_bytes()
SMALL_TRANSACTION = (FIXTURES / "ansi_nist/rec01_rec02_rec16.nst.an2").read_bytes()


@st.composite
def damaged(draw, valid: bytes):
    """``valid`` truncated, with bytes overwritten, inserted or cut out, or replaced by noise."""
    kind = draw(st.sampled_from(["truncate", "overwrite", "insert", "cut", "noise"]))
    data = bytearray(valid)
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "overwrite":
        for _ in range(draw(st.integers(1, 6))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        return bytes(data[:at] + draw(st.binary(min_size=1, max_size=40)) + data[at:])
    if kind == "cut":
        a, b = sorted(draw(st.tuples(st.integers(0, len(data)), st.integers(0, len(data)))))
        return bytes(data[:a] + data[b:])
    return draw(st.binary(max_size=600))


@SETTINGS
@given(st.one_of(damaged(ISO_RECORD), damaged(ANSI_RECORD)))
def test_template_readers_raise_only_template_errors(data):
    for decode in (decode_iso19794_2, decode_ansi378):
        try:
            assert isinstance(decode(data), MinutiaeTemplate)
        except TemplateError as exc:
            assert str(exc)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(WSQ_CODESTREAM))
def test_wsq_reader_and_decoder_raise_only_wsq_errors(data):
    try:
        header = read_wsq_header(data)
    except WsqError:
        return
    try:
        image = decode_wsq(data)
    except WsqError as exc:
        assert str(exc)
        return
    assert isinstance(image, np.ndarray) and image.shape == (header.height, header.width)


@SETTINGS
@given(st.one_of(damaged(SMALL_TRANSACTION), damaged(TRANSACTION[:3000] + TRANSACTION[-2:])))
def test_transaction_reader_raises_located_transaction_errors(data):
    try:
        assert isinstance(read_transaction(data), Transaction)
    except TransactionError as exc:
        assert exc.record_index is not None
        assert str(exc).startswith(f"record {exc.record_index}")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(TRANSACTION))
def test_validation_reports_instead_of_raising(data):
    issues = validate_transaction(data)
    assert all(str(issue) for issue in issues)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(SMALL_TRANSACTION))
def test_validate_command_never_raises(data):
    with tempfile.NamedTemporaryFile(suffix=".an2") as handle:
        handle.write(data)
        handle.flush()
        out = io.StringIO()
        assert validate_command(Path(handle.name), out=out) in (0, 1, 2)
        assert out.getvalue()


def test_every_error_class_is_a_record_error():
    for error in (TemplateError, WsqError, TransactionError):
        assert issubclass(error, RecordError)
