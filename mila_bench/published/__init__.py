"""The original project's published results (data) and how their rows map onto runs here."""
