"""The alerting engine both daemons run: store, events, ids, notifications.

Central hosts it for every site; a poller hosts it for its own site while
central is unreachable (checkd/autonomy.py). engine.py assembles the parts.
"""
