"""Detections and alerts as MongoDB documents, and the queries that find them."""

from datetime import datetime
from typing import Any

import msgspec

from roadwatch.domain import Alert, Detection, Source
from roadwatch.stores.detection_store import DetectionFilter, Position
from roadwatch.stores.mongo_reading import ForeignDocument, older_than_place
from roadwatch.stores.rule_refs import rules_in

Document = dict[str, Any]
# No document roadwatch writes comes near these: a detection's texts are at most 128
# characters, and an alert names at most 50 rules.
DETECTION_MAX_BYTES = 4 * 1024
ALERT_MAX_BYTES = 64 * 1024
# Alerts are counted once in all, under this (dimension, key), and once per rule matched.
ALL_ALERTS = ("alerts", "all")


def source_document(source: Source) -> Document:
    return {"topic": source.topic, "partition": source.partition, "offset": source.offset}


def detection_document(detection: Detection) -> Document:
    return {
        # A UUID's text sorts as its bytes do, so ties break as they do in PostgreSQL.
        "_id": str(detection.id),
        "timestamp": detection.timestamp,
        "year": detection.year,
        "make": detection.make,
        "model": detection.model,
        "category": detection.category,
        "source": source_document(detection.source),
    }


def detection_of(document: Document) -> Detection:
    """The detection a document holds; ForeignDocument when it is not as roadwatch writes."""
    # Its place in the order is taken as it is, not as text that reads as a time or an id.
    if not isinstance(document.get("timestamp"), datetime) or type(document.get("_id")) is not str:
        raise ForeignDocument("its timestamp is not a date, or its _id not text")
    try:
        return msgspec.convert({**document, "id": document["_id"]}, Detection)
    except msgspec.ValidationError as error:
        raise ForeignDocument(str(error)) from error


def source_of(document: object) -> Source | None:
    try:
        return msgspec.convert(document, Source)
    except msgspec.ValidationError:
        return None


def older_than(position: Position) -> Document:
    return older_than_place(position.timestamp, str(position.id))


def alert_document(alert: Alert) -> Document:
    return {
        **detection_document(alert.detection),
        "rules": [{"id": str(rule.id), "name": rule.name} for rule in alert.rules],
        "rule_ids": [str(rule.id) for rule in alert.rules],
    }


def alert_of(document: Document) -> Alert:
    """The alert a document holds, naming the rules it holds as roadwatch writes them;
    ForeignDocument when its detection is not as roadwatch writes it."""
    return Alert(detection_of(document), rules_in(document.get("rules")))


def detection_query(where: DetectionFilter) -> Document:
    # Values are compared as plain values: a string shaped like an operator stays a string.
    query = in_window(where.since, where.until)
    query.update(
        (field, value)
        for field in ("make", "model", "category", "year")
        if (value := getattr(where, field)) is not None
    )
    return query


def in_window(since: datetime | None, until: datetime | None) -> Document:
    time_range: Document = {}
    if since is not None:
        time_range["$gte"] = since
    if until is not None:
        time_range["$lt"] = until
    return {"timestamp": time_range} if time_range else {}


def alert_count_keys(alert: Alert) -> list[tuple[str, str]]:
    return [ALL_ALERTS, *(("rule", str(rule.id)) for rule in alert.rules)]
