"""The central node: ingest -> store -> events, and the HTTP API that reads and acts on them."""
