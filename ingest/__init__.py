"""Reading files: identity, chunking, batching, backfill and tailing; drives parsers into the warehouse."""
