"""Contracts shared by every AgentOps service: events, domain models, settings, broker and database setup."""
