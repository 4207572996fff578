"""The local servers do real work: a round trip through each one."""

import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from tests.helpers.servers import Servers, create_topic


@pytest.mark.kafka
async def test_a_message_produced_to_kafka_is_consumed_back(servers: Servers) -> None:
    topic = await create_topic(servers.kafka, partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka, acks="all")
    await producer.start()
    try:
        sent = {uuid.uuid4().bytes for _ in range(30)}
        for value in sent:
            await producer.send(topic, value)
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=servers.kafka,
        auto_offset_reset="earliest",
        group_id=f"{topic}.reader",
    )
    await consumer.start()
    try:
        received: set[bytes] = set()
        while len(received) < len(sent):
            batches = await consumer.getmany(timeout_ms=10_000)
            assert batches, "the consumer waited 10 s without receiving anything"
            received.update(record.value for records in batches.values() for record in records)
    finally:
        await consumer.stop()
    assert received == sent


@pytest.mark.postgres
async def test_a_row_written_to_postgres_is_read_back(postgres_database: str) -> None:
    connection = await asyncpg.connect(postgres_database)
    try:
        await connection.execute("CREATE TABLE probe (id uuid PRIMARY KEY, make text NOT NULL)")
        row_id = uuid.uuid4()
        await connection.execute("INSERT INTO probe VALUES ($1, $2)", row_id, "Toyota")
        assert await connection.fetchval("SELECT make FROM probe WHERE id = $1", row_id) == "Toyota"
    finally:
        await connection.close()


@pytest.mark.mongo
async def test_a_document_inserted_through_ferretdb_is_found(mongo_database_url: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_database_url)
    try:
        collection = client.get_default_database()["probe"]
        document_id = str(uuid.uuid4())
        await collection.insert_one({"_id": document_id, "make": "Toyota", "year": 2011})
        found = await collection.find_one({"make": "Toyota"})
        assert found == {"_id": document_id, "make": "Toyota", "year": 2011}
        await client.drop_database(client.get_default_database())
    finally:
        await client.close()
