"""The one place that builds HTTP sessions (`session`), their settings (`config`), and the
on-disk cache (`cache`).  Import the submodule you need: this package imports nothing, so
reading settings never loads the HTTP stack."""
