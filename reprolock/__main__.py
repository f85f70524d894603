"""`python -m reprolock` runs the command line."""

from reprolock.cli.main import main

if __name__ == "__main__":
    main()
