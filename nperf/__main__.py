import sys
from nperf.cli import main

sys.exit(main())
