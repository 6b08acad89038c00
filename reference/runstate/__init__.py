"""The worker-side state of a gate run: time shares, statistics, findings, the in-flight
example (`session`), and the JSON-lines streams it writes and reads (`streams`)."""
