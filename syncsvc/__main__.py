from syncsvc.cli import main

main()
