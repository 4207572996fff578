from roadwatch.cli import app

app()
