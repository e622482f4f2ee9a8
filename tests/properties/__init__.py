"""The bad-input suite (issue 11): Hypothesis property tests, 1,000 examples each, derandomized.

Run: ``.venv/bin/pytest tests/properties`` (needs Redis on 127.0.0.1:6379; database 14 is flushed
and used by this suite alone). Every property attacks one public surface with inputs an attacker or
a careless caller would send, and checks that only typed ``CruxError``s escape, that nothing is
written to Redis when an input is refused (a digest of every key and value of the database, taken
before and after), and that no flow is ever left unreadable or stuck.
"""
