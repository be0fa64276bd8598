"""Votes: set-up, documents, the status machine and the frozen voter list."""
