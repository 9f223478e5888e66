"""The ``tugboat`` command line."""
