"""The network weather map: links between sites from the `weathermaps:` objects,
coloured by the traffic their checks report (values.py: the numbers; drawing.py:
the picture; pages.py: the routes). docs/weathermap.md."""
