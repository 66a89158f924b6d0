import sys

from ops.cli.main import main

sys.exit(main())
