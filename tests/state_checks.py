"""Objects whose checks read their state from a file the test writes (0-3 in
{dir}/repl and {dir}/backup): real processes, real plugin runs, states on demand.
Their perfdata is the state, so a central with `rrd:` graphs every result."""

OBJECTS = """\
commands:
  from_file: "/bin/sh -c 'read s < {dir}/$ARG1$; echo \\"state $s at $(date +%s.%N) | state=$s\\"; exit $s'"
contacts:
  - {{name: ops, email: ops@example.com}}
hosts:
  - {{name: db1.ladc1, address: 127.0.0.1, contacts: [ops]}}
services:
  - {{host: db1.ladc1, description: Replication, command: "from_file!repl", interval: 0.5s, retry_interval: 0.3s,
     max_attempts: 2, contacts: [ops]}}
  - {{host: db1.ladc1, description: Backup, command: "from_file!backup", interval: 0.5s, retry_interval: 2s,
     max_attempts: 3, contacts: [ops]}}
"""
