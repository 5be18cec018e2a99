"""Livestatus: central answers the query language Nagios tools speak (LQL) on a unix
socket and, with an allowlist, on TCP (docs/livestatus.md).

The path of one request: server.py reads it, lql.py parses it into a Query or a
Command, tables.py maps central's live state onto the Nagios tables and columns,
filters.py and stats.py select and count rows, output.py writes the answer;
commands.py turns an external command into one of central/operations.py.
"""
