"""The writers behind the stores: batching, versioned writes, retries. No domain logic."""
