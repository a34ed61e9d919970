"""Allow ``python -m mila_bench`` as well as the ``mila-bench`` script."""

from mila_bench.cli.app import main

main()
