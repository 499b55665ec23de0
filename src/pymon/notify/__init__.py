"""Delivery of notices: the durable outbox, the channels (log, e-mail, webhook, command)
and the SMTP server that takes acknowledgements by reply.

The rules decide *that* a notice is owed (``engine/rules.py``); the batch writer
puts it in the store in the same transaction as the state that caused it; the
outbox (``outbox.py``) reads it back and hands it to each of its channels until
every one has taken it.
"""
