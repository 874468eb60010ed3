"""Helpers the tests (and bench/) share: real server processes, S3 doubles, the corpus, checks."""
