"""Import a Nagios configuration into a checkd objects directory.

parse (nagios.cfg and object files) -> resolve (templates, host sets) ->
emit (checkd YAML); report lists what could not be carried over, with file:line.
"""
