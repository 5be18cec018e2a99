"""Livestatus: central answers the query language Nagios tools speak (LQL) on a unix
socket and, with an allowlist, on TCP (docs/livestatus.md).

The path of one request: server.py reads it, lql.py parses it into a Query or a
Command, snapshot.py copies what a query reads of central's state, tables.py (checks.py,
about.py, columns.py) maps it onto the Nagios tables and columns, query.py answers a GET,
filters.py and stats.py select and count rows, output.py writes the answer;
commands.py turns an external command into one of central/operations.py.
"""
