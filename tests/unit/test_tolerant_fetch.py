"""Reading a fetched batch never raises, whatever its bytes: each record comes out once, in
order, either as the record it is or as an Unreadable that says why."""

import ast
import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from aiokafka.consumer import fetcher
from aiokafka.structs import ConsumerRecord, TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from roadwatch.kafka.record import Record
from roadwatch.kafka.tolerant_fetch import install, uninstall
from roadwatch.kafka.unreadable import Unreadable
from roadwatch.rejections import Reason
from tests.helpers.raw_records import CODECS, RawRecord, encode_batch

SOURCE = Path(__file__).parents[2] / "src" / "roadwatch"
# Each example is a few milliseconds: 300 in make test, more in make fuzz.
EXAMPLES = 25 * int(os.environ.get("ROADWATCH_FUZZ_EXAMPLES", "12"))
READ_UNCOMMITTED = 0


def read(data: bytes, *, fetch_offset: int = 0, tolerant: bool = True) -> list[Any]:
    """Every item aiokafka's fetcher makes of a fetch response holding `data` (through its
    own classes if not `tolerant`)."""
    install() if tolerant else uninstall()
    try:
        records = fetcher.MemoryRecords(data)
        partition = fetcher.PartitionRecords(
            TopicPartition("t", 0), records, [], fetch_offset, None, None, True, READ_UNCOMMITTED
        )
        return list(partition)
    finally:
        install()


names = st.binary(max_size=8)
raw_records = st.builds(
    RawRecord,
    value=st.none() | st.binary(max_size=64),
    key=st.none() | st.binary(max_size=16),
    headers=st.lists(st.tuples(names, st.none() | st.binary(max_size=16)), max_size=4),
    timestamp_ms=st.none() | st.integers(0, 2**40),
)


def _is_text(name: bytes) -> bool:
    try:
        name.decode()
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=EXAMPLES)
@given(st.lists(raw_records, min_size=1, max_size=12), st.sampled_from(sorted(CODECS)))
def test_every_record_comes_out_once_in_order_as_itself_or_as_unreadable(
    sent: list[RawRecord], compression: str
) -> None:
    items = read(encode_batch(sent, compression=compression))
    assert [item.offset for item in items] == list(range(len(sent)))
    for item, record in zip(items, sent, strict=True):
        assert (item.key, item.value) == (record.key, record.value)
        if all(_is_text(name) for name, _value in record.headers):
            assert isinstance(item, Record)
            assert list(item.headers) == [(n.decode(), v) for n, v in record.headers]
        else:
            assert isinstance(item, Unreadable)
            assert item.reason == Reason.HEADER_NOT_UTF8
            assert (item.topic, item.partition) == ("t", 0)


@settings(max_examples=EXAMPLES)
@given(
    st.lists(raw_records, min_size=1, max_size=12),
    st.sampled_from(sorted(CODECS)),
    st.integers(0, 3),
)
def test_a_readable_record_holds_what_aiokafkas_own_record_holds(
    sent: list[RawRecord], compression: str, fetch_offset: int
) -> None:
    text_only = [
        dataclasses.replace(r, headers=[(n, v) for n, v in r.headers if _is_text(n)]) for r in sent
    ]
    batch = encode_batch(text_only, compression=compression)
    own = read(batch, fetch_offset=fetch_offset, tolerant=False)
    assert all(isinstance(item, ConsumerRecord) for item in own)
    assert [
        (r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, r.headers) for r in own
    ] == [
        (r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, r.headers)
        for r in read(batch, fetch_offset=fetch_offset)
    ]


def test_a_record_after_a_bad_header_name_in_the_same_batch_is_read() -> None:
    batch = [
        RawRecord(b"before"),
        RawRecord(b"bad", headers=[(b"fine", b"1"), (b"\xff\xfe", b"2")]),
        RawRecord(b"after", headers=[(b"h", None)]),
    ]
    items = read(encode_batch(batch))
    assert [type(item) for item in items] == [Record, Unreadable, Record]
    assert items[1].headers == (("fine", b"1"), ("\\xff\\xfe", b"2"))
    assert "b'\\xff\\xfe' is not UTF-8" in items[1].detail
    assert items[2].value == b"after"


def test_a_fetch_from_inside_a_batch_starts_there() -> None:
    batch = [RawRecord(b"0", headers=[(b"\x80", None)]), RawRecord(b"1"), RawRecord(b"2")]
    assert [item.value for item in read(encode_batch(batch), fetch_offset=1)] == [b"1", b"2"]


@settings(max_examples=EXAMPLES)
@given(st.data())
def test_a_batch_with_any_bytes_changed_never_raises_and_ends_at_its_last_offset(
    data: st.DataObject,
) -> None:
    sent = data.draw(st.lists(raw_records, min_size=1, max_size=6))
    batch = bytearray(encode_batch(sent, compression=data.draw(st.sampled_from(sorted(CODECS)))))
    # Past the base offset and length, so that the batch is still cut where it was.
    # Where, as a share of the length: a compressed batch's length varies from run to run.
    for _ in range(data.draw(st.integers(1, 4))):
        at = 12 + data.draw(st.integers(0, 2**16)) % (len(batch) - 12)
        batch[at] = data.draw(st.integers(0, 255))
    items = read(bytes(batch))
    # A control batch (a transaction's marker) holds no records for a consumer; only a
    # broker writes one.
    control = bool(batch[22] & 0x20)
    assert items or control, f"a batch read nothing, not even an Unreadable: {batch.hex()}"
    offsets = [item.offset for item in items]
    assert offsets == sorted(set(offsets))
    unreadable = [item for item in items if isinstance(item, Unreadable)]
    assert all(item.reason in set(Reason) for item in unreadable)


def test_a_batch_whose_checksum_fails_is_one_unreadable_for_all_its_offsets() -> None:
    batch = bytearray(encode_batch([RawRecord(b"a"), RawRecord(b"b"), RawRecord(b"c")]))
    batch[-1] ^= 0xFF
    (item,) = read(bytes(batch))
    assert isinstance(item, Unreadable)
    assert (item.offset, item.reason) == (2, Reason.UNREADABLE_BATCH)
    assert item.detail.startswith("offsets 0 to 2: its checksum")


def test_a_fetch_cut_short_inside_its_last_batch_reads_the_whole_ones() -> None:
    whole = encode_batch([RawRecord(b"whole")])
    cut = encode_batch([RawRecord(b"cut")])[:-5]
    assert [item.value for item in read(whole + cut)] == [b"whole"]


def _calls(path: Path, names: set[str]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            called = node.func
            name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
            if name in names:
                found.append(f"{path.relative_to(SOURCE)}:{node.lineno} {name}")
    return found


def test_no_module_makes_a_kafka_consumer_but_the_reader() -> None:
    made = [
        found
        for path in sorted(SOURCE.rglob("*.py"))
        if path != SOURCE / "kafka" / "reader.py"
        for found in _calls(path, {"AIOKafkaConsumer"})
    ]
    assert made == []


@pytest.mark.parametrize("package", ["api", "indexer", "watchlists", "webhooks", "bootstrap"])
def test_no_process_reads_a_consumer_but_through_the_reader(package: str) -> None:
    read = [
        found
        for path in sorted((SOURCE / package).rglob("*.py"))
        for found in _calls(path, {"getmany", "getone"})
    ]
    assert read == []
