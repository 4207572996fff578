"""What every roadwatch Alembic environment does: migrate on the connection it is handed."""

from alembic import context


def run_migrations() -> None:
    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        version_table=config.attributes["version_table"],
    )
    with context.begin_transaction():
        context.run_migrations()
