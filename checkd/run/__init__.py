"""Running one check: exec (fork/exec), embedded (Python in-process) or ssh.

Each runner turns a prepared command into a RawRun; checkd.plugin_output
turns that into what users see.
"""
