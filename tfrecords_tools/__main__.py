import sys

from tfrecords_tools.convert import main

sys.exit(main())
