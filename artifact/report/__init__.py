"""What people read: the report, side by side, plots, the documents' generated tables."""
