"""The run-directory contract: checkpoint I/O, integrity digests, the run lock, run info and parameter scopes."""
