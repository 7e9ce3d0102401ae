"""``python -m sinsr_jax.weights``: see command.py."""

import sys

from sinsr_jax.weights.command import main

sys.exit(main())
