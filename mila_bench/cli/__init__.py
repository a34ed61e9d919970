"""The ``mila-bench`` command line (``app``), its plot commands, and how every command meets an error."""
