"""Building wheels from source distributions: unpacking them safely, an isolated build
environment of locked wheels, and the PEP 517 hooks run in a bounded subprocess."""
