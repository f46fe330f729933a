"""Reports: figures and tables written from what earlier stages left on disk."""
