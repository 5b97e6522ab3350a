"""The seed reproduction: its systems, claims and report."""
