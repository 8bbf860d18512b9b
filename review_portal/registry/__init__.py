"""The registry of admitted programs: entries, published snapshots, public exports."""
