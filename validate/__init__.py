"""The widenet validation harness: `python -m validate` runs the scenarios and writes a report."""
