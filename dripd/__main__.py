import sys

from dripd.cli import main

sys.exit(main())
