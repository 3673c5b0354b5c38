"""ctest's flexjit_python: the pytest suite of this directory; exit 77 (ctest: skipped) when
pytest or numpy is missing. Extra arguments go to pytest."""

import os
import sys

try:
    import numpy  # noqa: F401
    import pytest
except ImportError as e:
    print("flexjit_python: skipped: %s (on Debian: apt-get install python3-pytest python3-numpy)"
          % e)
    sys.exit(77)

here = os.path.dirname(os.path.abspath(__file__))
sys.exit(pytest.main(["-q", "-rs", "-p", "no:cacheprovider", here] + sys.argv[1:]))
