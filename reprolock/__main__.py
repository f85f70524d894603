"""`python -m reprolock` runs the command line."""

from reprolock.cli.main import run

if __name__ == "__main__":
    run()
