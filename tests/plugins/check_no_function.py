"""Test plugin: defines no check function."""
VALUE = 1
