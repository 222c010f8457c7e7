"""Standard records: what leaves the station in formats other systems read.

* ``template``: ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004 minutiae templates;
* ``wsq``: WSQ fingerprint image compression (NIST NBIS through the ``wsq`` package);
* ``transaction``: ANSI/NIST-ITL 1-2011 traditional encoding, read and write;
* ``profile``: what an agency expects (FBI EBTS CAR by default);
* ``builder``: a booking to its transaction; ``type9``: the INCITS 378 minutiae block;
* ``validate`` and ``cli``: checks with located issues, and the ``validate`` command.

All of it is pure: bytes and arrays in, bytes and values out. Errors derive from
``appliance.errors.RecordError`` (see ``errors``).
"""

from appliance.records.builder import FingerSegment, assemble_transaction, build_transaction
from appliance.records.errors import ProfileError, TemplateError, TransactionError, WsqError
from appliance.records.profile import (
    DEFAULT_PROFILE,
    EBTS_CAR,
    LOCAL_TENPRINT,
    PROFILES,
    Profile,
    Type2Field,
    get_profile,
)
from appliance.records.template import (
    MinutiaeTemplate,
    TemplateFormat,
    TemplateView,
    decode_ansi378,
    decode_iso19794_2,
    encode_ansi378,
    encode_iso19794_2,
    quantize,
    write_template,
)
from appliance.records.transaction import (
    FingerprintImageRecord,
    OpaqueRecord,
    TaggedRecord,
    Transaction,
    read_transaction,
    write_transaction,
)
from appliance.records.type9 import read_m1_minutiae
from appliance.records.validate import ValidationIssue, validate_transaction
from appliance.records.wsq import WsqHeader, decode_wsq, encode_wsq, read_wsq_header

__all__ = [
    "DEFAULT_PROFILE",
    "EBTS_CAR",
    "LOCAL_TENPRINT",
    "PROFILES",
    "FingerSegment",
    "FingerprintImageRecord",
    "MinutiaeTemplate",
    "OpaqueRecord",
    "Profile",
    "ProfileError",
    "TaggedRecord",
    "TemplateError",
    "TemplateFormat",
    "TemplateView",
    "Transaction",
    "TransactionError",
    "Type2Field",
    "ValidationIssue",
    "WsqError",
    "WsqHeader",
    "assemble_transaction",
    "build_transaction",
    "decode_ansi378",
    "decode_iso19794_2",
    "decode_wsq",
    "encode_ansi378",
    "encode_iso19794_2",
    "encode_wsq",
    "get_profile",
    "quantize",
    "read_m1_minutiae",
    "read_transaction",
    "read_wsq_header",
    "validate_transaction",
    "write_template",
    "write_transaction",
]
