from ripen.cli import app

app()
