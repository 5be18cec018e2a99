"""Configuration: node files (central:/poller:) and the shared object directory.

Everything is validated whole at load into immutable objects; a mistake is a
ConfigError listing every problem as FILE:LINE: message.
"""

from checkd.config.errors import ConfigError, Problem
from checkd.config.load import load_node, load_objects

__all__ = ["ConfigError", "Problem", "load_node", "load_objects"]
