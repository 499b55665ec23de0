"""Tests of the SQL store against real SQLite files and a real PostgreSQL server."""
