"""Graphs: perfdata into RRD files (a writer process, through rrdcached when configured),
and out again as PNG graphs with a week-over-week line, deployment markers and
thresholds, as series for the web page, and as figures for weather maps.

The path, one module per step: settings -> naming/catalog (safe file names and the
label mapping) -> rra (file layout) -> feed (central's side: bounded queue) ->
writer (child process: parse, create, update; rrdcached protocol in rrdcached.py) ->
render (rrdtool graph/xport) -> request (HTTP input checks) -> api (routes), with
alerts.py choosing the graph an alert email carries. graphs.py ties them to central.
"""
