"""The source table as projector reads it: parallel scans, consistent reads of named items, a rate limit."""
