import sys

from linkserver.cli import main

sys.exit(main())
