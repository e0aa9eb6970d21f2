from opscore.cli.main import main

raise SystemExit(main())
