"""Validation of whole transactions, and the ``validate`` command."""

from __future__ import annotations

import io

import pytest
from records_support import CAR_DESCRIPTORS, WHEN, shared_path, tenprint_booking

from appliance.cli.records import validate_command
from appliance.domain import Minutia, MinutiaType, Position
from appliance.records.builder import build_transaction
from appliance.records.profile import EBTS_CAR
from appliance.records.transaction import DATA_FIELD, read_transaction, write_transaction
from appliance.records.validate import ValidationIssue, validate_transaction


@pytest.fixture(scope="module")
def car() -> bytes:
    minutiae = [Minutia(10.0 + 5 * i, 12.0 + 4 * i, 0.1 * i, MinutiaType.ENDING, 60)
                for i in range(20)]
    return build_transaction(tenprint_booking(), profile=EBTS_CAR, ori="NY0303000",
                             tcn="TCN-0001", type2=CAR_DESCRIPTORS, now=WHEN,
                             templates={Position.RIGHT_INDEX: minutiae})


def issues_after(data: bytes, change, *, recount: bool = True, profile=EBTS_CAR):
    transaction = read_transaction(data)
    change(transaction)
    return validate_transaction(write_transaction(transaction, recount=recount), profile)


def fields_of(issues: list[ValidationIssue]) -> set[str | None]:
    return {issue.field for issue in issues}


def test_built_transaction_is_clean(car):
    assert validate_transaction(car, EBTS_CAR) == []


def test_issue_text_names_record_type_and_field():
    issue = ValidationIssue(3, 14, "14.011", "CGA 'XYZ' is not known")
    assert str(issue) == "record 3 (Type-14) 14.011: CGA 'XYZ' is not known"
    assert str(ValidationIssue(None, None, None, "needs a slap")) == "transaction: needs a slap"


@pytest.mark.parametrize("name", ["type-4-14-slaps.an2", "type-8-sig-fax.an2",
                                  "type-14-amp-nqm-utf8.an2"])
def test_nist_fixture_transactions_have_no_issues(fixtures, name):
    assert validate_transaction((fixtures / "ansi_nist" / name).read_bytes()) == []


def test_an_unknown_version_is_reported(fixtures):
    data = (fixtures / "ansi_nist" / "rec01_rec02_rec16.nst.an2").read_bytes()
    assert [str(i) for i in validate_transaction(data)] == [
        "record 0 (Type-1) 1.002: VER '0' is not a known version "
        "(0200, 0300, 0400, 0500, 0501, 0502)"]


def test_framing_error_is_the_single_issue(car):
    (issue,) = validate_transaction(car[:-10])
    assert (issue.record_type, issue.field) == (9, "9.001")


def test_cnt_count_and_idc_mismatches_are_reported(car):
    def drop_last(t):
        t.records.pop()
    (issue,) = issues_after(car, drop_last, recount=False)
    assert (issue.record_index, issue.record_type) == (15, 9)  # listed, but not there

    def miscount(t):
        listed = t.type1.subfields(3)
        listed[0][1] = "16"
        t.type1.set(3, listed)
    issues = issues_after(car, miscount, recount=False)
    assert [i.message for i in issues] == [
        "CNT says 16 records follow Type-1, the transaction has 15"]

    def renumber(t):
        t.records[5].set(2, "42")
    issues = issues_after(car, renumber, recount=False)
    assert any(i.field == "1.003" and "IDC 04, the record says 42" in i.message for i in issues)


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda r: r.fields.pop(11), "14.011", "mandatory"),
    (lambda r: r.set(11, "XYZ"), "14.011", "CGA"),
    (lambda r: r.set(6, "300"), "14.999", "WSQ frame is 256x256"),
    (lambda r: r.set(999, r.fields[999][:600] + r.fields[999][650:]), "14.999", "decode"),
    (lambda r: r.set(5, "20241345"), "14.005", "valid date"),
    (lambda r: r.set(9, "250"), "14.009", "below the 490 ppi"),
    (lambda r: r.set(3, "9"), "14.003", "impression code"),
    (lambda r: r.set(24, [["2", "101", "0101", "56"]]), "14.024", "FQM"),
])
def test_type14_defects_are_located(car, change, field, words):
    issues = issues_after(car, lambda t: change(t.records[3]))
    located = [i for i in issues if i.field == field]
    assert located and all(i.record_index == 3 and i.record_type == 14 for i in located)
    assert any(words in i.message for i in located), located


def test_segment_box_outside_the_slap_is_reported(car):
    issues = issues_after(car, lambda t: t.records[12].set(21, [["2", "0", "900", "0", "10"]]))
    assert [i.field for i in issues] == ["14.021"]


def test_minutiae_count_and_range_are_checked(car):
    def damage(t):
        t.records[-1].set(136, "21")
        items = t.records[-1].subfields(137)
        items[0][1] = "5000"
        t.records[-1].set(137, items)
    issues = issues_after(car, damage)
    assert {(i.field, i.record_type) for i in issues} == {("9.136", 9), ("9.137", 9)}


def test_profile_rules_are_checked(car):
    def strip(t):
        t.type1.set(4, "MAP")
        t.records[1].fields.pop(20)
        del t.records[5]  # rolled right ring
    issues = issues_after(car, strip)
    messages = [str(i) for i in issues]
    assert "record 0 (Type-1) 1.004: TOT 'MAP' but the ebts-car profile expects 'CAR'" in messages
    assert "record 1 (Type-2) 2.020: POB is mandatory for ebts-car" in messages
    assert any("rolled right ring (4)" in m for m in messages)
    assert validate_transaction(write_transaction(_stripped(car, strip))) == []


def _stripped(data, change):
    transaction = read_transaction(data)
    change(transaction)
    return transaction


def test_non_ascii_text_needs_a_utf8_declaration(car):
    issues = issues_after(car, lambda t: t.records[1].set(18, "MÜLLER,JOHN"))
    assert [(i.field, i.message) for i in issues] == [
        ("2.018", "non-ASCII text, but 1.015 DCS does not declare UTF-8")]

    def declare(t):
        t.records[1].set(18, "MÜLLER,JOHN")
        t.type1.set(15, [["003", "UTF-8", ""]])
    assert issues_after(car, declare) == []


@pytest.mark.slow
def test_every_nist_reference_is_clean_but_for_its_odd_version():
    folder = shared_path("ansi_nist_references")
    flagged = {}
    for path in sorted(folder.glob("*.an2")):
        issues = validate_transaction(path.read_bytes())
        if issues:
            flagged[path.name] = [i.field for i in issues]
    assert flagged == {"rec01_rec02_rec16.nst.an2": ["1.002"]}


# -- the command ------------------------------------------------------------------------------


def test_command_reports_clean_file(tmp_path, car):
    path = tmp_path / "car.an2"
    path.write_bytes(car)
    out = io.StringIO()
    assert validate_command(path, "ebts-car", out=out) == 0
    assert out.getvalue() == f"{path}: valid against the ebts-car profile\n"


def test_command_prints_each_issue_on_its_own_line(tmp_path, fixtures):
    path = tmp_path / "t.an2"
    path.write_bytes((fixtures / "ansi_nist" / "type-14-amp-nqm-utf8.an2").read_bytes())
    out = io.StringIO()
    assert validate_command(path, "ebts-car", out=out) == 1
    lines = out.getvalue().splitlines()
    expected = validate_transaction(path.read_bytes(), EBTS_CAR)
    assert lines == [f"{path}: {issue}" for issue in expected]
    assert any("1.004: TOT 'AMN'" in line for line in lines)


@pytest.mark.parametrize(("content", "profile"), [
    (None, None), (b"GIF89a", None), (b"1.001:18\x1d1.002:0500\x1c", "no-such-profile")])
def test_command_exit_2_when_unreadable(tmp_path, content, profile):
    path = tmp_path / "in.an2"
    if content is not None:
        path.write_bytes(content)
    out = io.StringIO()
    assert validate_command(path, profile, out=out) == 2
    assert out.getvalue().startswith(f"{path}: ")


def test_truncated_file_is_an_issue_not_unreadable(tmp_path, car):
    path = tmp_path / "cut.an2"
    path.write_bytes(car[: len(car) // 2])
    out = io.StringIO()
    assert validate_command(path, out=out) == 1
    assert "record " in out.getvalue()


def test_data_field_constant_is_the_image_field():
    assert DATA_FIELD == 999


@pytest.mark.parametrize("cut", [(600, 650), (100, 101)])
def test_walking_without_decoding_still_finds_a_damaged_codestream(car, cut):
    """The submit path validates its own WSQ without the NBIS decode: the walk must still
    find a codestream with bytes cut out of its tables or its entropy-coded blocks."""
    a, b = cut
    transaction = read_transaction(car)
    record = transaction.records[3]
    record.set(999, record.fields[999][:a] + record.fields[999][b:])
    data = write_transaction(transaction)
    assert validate_transaction(car, EBTS_CAR, decode_images=False) == []
    walked = validate_transaction(data, EBTS_CAR, decode_images=False)
    assert [i.field for i in walked] == ["14.999"]
    assert "does not decode" in walked[0].message
