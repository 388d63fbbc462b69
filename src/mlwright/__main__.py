from mlwright.cli.main import run

run()
