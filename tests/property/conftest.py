"""Hypothesis profiles for the property tests: "switchyard" (the default) keeps the whole
directory well under a minute; HYPOTHESIS_PROFILE=thorough searches much longer."""

import os

from hypothesis import settings

# No deadline: the first examples also pay for imports and regex compilation, and a slow
# example is no failure of these properties.
settings.register_profile("switchyard", max_examples=60, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "switchyard"))
