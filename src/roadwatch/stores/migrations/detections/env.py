from roadwatch.stores.migrations.environment import run_migrations

run_migrations()
