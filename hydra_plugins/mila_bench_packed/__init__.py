"""mila-bench's Hydra launcher plugin (``hydra/launcher=packed``): Hydra loads launchers only
from its ``hydra_plugins`` namespace; the work is in ``mila_bench.launch.packed``."""
