"""Detections and alerts as MongoDB documents, and the queries that find them."""

from datetime import datetime
from typing import Any
from uuid import UUID

from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.stores.detection_store import DetectionFilter, Position

Document = dict[str, Any]
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
    source = document["source"]
    return Detection(
        id=UUID(document["_id"]),
        timestamp=document["timestamp"],
        year=document["year"],
        make=document["make"],
        model=document["model"],
        category=document["category"],
        source=Source(source["topic"], source["partition"], source["offset"]),
    )


def older_than(position: Position) -> Document:
    return {
        "$or": [
            {"timestamp": {"$lt": position.timestamp}},
            {"timestamp": position.timestamp, "_id": {"$lt": str(position.id)}},
        ]
    }


def alert_document(alert: Alert) -> Document:
    return {
        **detection_document(alert.detection),
        "rules": [{"id": str(rule.id), "name": rule.name} for rule in alert.rules],
        "rule_ids": [str(rule.id) for rule in alert.rules],
    }


def alert_of(document: Document) -> Alert:
    rules = tuple(RuleRef(UUID(rule["id"]), rule["name"]) for rule in document["rules"])
    return Alert(detection_of(document), rules)


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
