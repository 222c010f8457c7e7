"""ANSI/NIST-ITL traditional encoding: reading and writing NIST's reference transactions."""

from __future__ import annotations

import pytest
from records_support import shared_path

from appliance.records.errors import TransactionError
from appliance.records.transaction import (
    DATA_FIELD,
    FingerprintImageRecord,
    OpaqueRecord,
    TaggedRecord,
    Transaction,
    read_transaction,
    write_transaction,
)
from appliance.records.wsq import decode_wsq

FIXTURE_FILES = ["type-4-14-slaps.an2", "rec01_rec02_rec16.nst.an2", "type-8-sig-fax.an2",
                 "type-14-amp-nqm-utf8.an2"]


def rebuilt(transaction: Transaction) -> Transaction:
    """The same transaction re-created field by field through the public setters."""
    records = []
    for record in transaction.records:
        if not isinstance(record, TaggedRecord):
            records.append(record)
            continue
        copy = TaggedRecord(record.type)
        for number in record.fields:
            if number == 1:
                copy.set(1, "0")  # recomputed by the writer
            elif number == DATA_FIELD:
                copy.set(number, record.fields[number])
            else:
                copy.set(number, record.subfields(number))
        records.append(copy)
    return Transaction(records)


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_transactions_are_written_back_byte_for_byte(fixtures, name):
    data = (fixtures / "ansi_nist" / name).read_bytes()
    transaction = read_transaction(data)
    assert write_transaction(transaction) == data
    assert write_transaction(rebuilt(transaction)) == data


def test_type4_header_fields_are_parsed(fixtures):
    data = (fixtures / "ansi_nist" / "type-4-14-slaps.an2").read_bytes()
    transaction = read_transaction(data)
    assert [r.type for r in transaction.records] == [1, 2, 4, 4, 14]
    slap = transaction.records[2]
    assert isinstance(slap, FingerprintImageRecord)
    assert (slap.idc, slap.impression_type, slap.positions[0]) == (1, 2, 14)
    assert slap.positions[1:] == (255,) * 5
    assert (slap.scanning_resolution, slap.compression) == (0, 1)  # minimum res., WSQ
    assert decode_wsq(slap.image).shape == (slap.height, slap.width) == (1000, 1608)


def test_type14_fields_and_utf8_text_are_readable(fixtures):
    data = (fixtures / "ansi_nist" / "type-14-amp-nqm-utf8.an2").read_bytes()
    transaction = read_transaction(data)
    assert transaction.type1.subfields(15) == [["003", "UTF-8", "4.0"]]
    assert transaction.records[1].text(3) == "two chinese characters: 華裔"
    left_slap = transaction.records[4]
    assert left_slap.text(13) == "14"
    assert left_slap.subfields(18) == [["9", "XX"]]
    assert left_slap.subfields(22) == [["7", "2"], ["8", "2"], ["10", "3"]]
    image = decode_wsq(left_slap.fields[DATA_FIELD])
    assert image.shape == (int(left_slap.text(7)), int(left_slap.text(6)))


def test_writer_recomputes_len_and_cnt(fixtures):
    data = (fixtures / "ansi_nist" / "type-14-amp-nqm-utf8.an2").read_bytes()
    transaction = read_transaction(data)
    del transaction.records[3]
    transaction.records[1].set(3, "changed")
    out = read_transaction(write_transaction(transaction))
    assert out.type1.subfields(3) == [["1", "3"], ["2", "00"], ["14", "01"], ["14", "03"]]
    assert out.records[1].text(3) == "changed"


def test_records_are_not_modified_by_writing(fixtures):
    transaction = read_transaction((fixtures / "ansi_nist" / "rec01_rec02_rec16.nst.an2")
                                   .read_bytes())
    before = dict(transaction.type1.fields)
    transaction.records.pop()
    write_transaction(transaction)
    assert transaction.type1.fields == before


def test_separators_cannot_be_smuggled_into_a_value():
    record = TaggedRecord(2)
    with pytest.raises(TransactionError, match="2.018"):
        record.set(18, "DOE\x1dJOHN")
    with pytest.raises(TransactionError):
        record.set(18, b"DOE\x1cJOHN")


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda d: d[:-1], (4, 14, "14.001")),
    (lambda d: d[:300], (2, 4, "4.001")),
    (lambda d: d + b"x", (5, None, None)),
    (lambda d: d.replace(b"1.001:195", b"1.001:194", 1), (0, 1, "1.001")),
    (lambda d: d.replace(b"14\x1f03", b"13\x1f03", 1), (4, 13, "13.001")),
    (lambda d: b"2" + d[1:], (0, 1, "1.001")),
])
def test_framing_errors_name_the_record_and_field(fixtures, mutate, where):
    data = mutate((fixtures / "ansi_nist" / "type-4-14-slaps.an2").read_bytes())
    with pytest.raises(TransactionError) as caught:
        read_transaction(data)
    error = caught.value
    assert (error.record_index, error.record_type, error.field) == where
    assert str(error).startswith(f"record {where[0]}")


def test_every_nist_reference_transaction_is_read_and_written_back(capsys):
    folder = shared_path("ansi_nist_references")
    files = sorted(folder.glob("*.an2"))
    assert len(files) == 30
    identical, passthrough = [], []
    for path in files:
        data = path.read_bytes()
        transaction = read_transaction(data)
        assert write_transaction(rebuilt(transaction)) == data, path.name
        opaque = any(isinstance(r, OpaqueRecord) for r in transaction.records)
        (passthrough if opaque else identical).append(path.name)
    with capsys.disabled():
        print(f"\nANSI/NIST references: {len(identical)} of {len(files)} rebuilt field by field "
              f"and written byte-identical; {len(passthrough)} more identical with their "
              f"Type-3/5/6/7/8 records passed through unparsed ({', '.join(passthrough)})")
    assert len(identical) + len(passthrough) == 30


def test_booking_number_problems_follow_the_profile() -> None:
    from dataclasses import replace

    from appliance.records.profile import EBTS_CAR, booking_number_problems

    assert booking_number_problems(EBTS_CAR, "BK-2026/0042 A") == []
    assert booking_number_problems(EBTS_CAR, "") == ["Type the booking number."]
    assert "at most 20" in booking_number_problems(EBTS_CAR, "9" * 21)[0]
    assert "'é'" in booking_number_problems(EBTS_CAR, "café")[0]
    assert "U+001E" in booking_number_problems(EBTS_CAR, "A\x1eB")[0]
    digits_only = replace(EBTS_CAR, booking_number_chars=frozenset("0123456789"))
    assert "'-'" in booking_number_problems(digits_only, "12-34")[0]
