from syncsvc.cli import main

main(prog_name="syncsvc")  # not "python -m syncsvc" in usage lines
