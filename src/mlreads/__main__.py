from mlreads.cli import main

raise SystemExit(main())
