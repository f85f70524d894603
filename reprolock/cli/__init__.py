"""The command line: thin click commands over `reprolock.api`."""
