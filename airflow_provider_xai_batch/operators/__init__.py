"""Operators for xAI's Batch API: create, fill, cancel and run batches."""
