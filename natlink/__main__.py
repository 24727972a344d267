import sys

from natlink.cli import main

sys.exit(main())
