"""The loss: its terms (terms.py, re-exported here), what the generator minimises
(generator_loss.py) and the convex objective a config builds (objective.py)."""

from sinsr_jax.losses.terms import *  # noqa: F403
from sinsr_jax.losses.terms import __all__  # noqa: F401
