"""``python -m latentfactors``: the same command line as the ``latentfactors`` script."""

import sys

from latentfactors.cli import main

if __name__ == "__main__":
    sys.exit(main())
