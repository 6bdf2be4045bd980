import sys

from livepose.cli import main

sys.exit(main())
