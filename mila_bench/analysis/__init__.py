"""Analysis figures: every figure of the original README as a command that regenerates it.

``commands`` holds the ``mila-bench plot`` sub-app and imports only typer; each study
lives in its own module and loads torch and matplotlib when it runs.
"""
