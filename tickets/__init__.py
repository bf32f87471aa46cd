"""Ticket sinks, the outbox dispatcher and deduplication of rule hits into incidents."""
