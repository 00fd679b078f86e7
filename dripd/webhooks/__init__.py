"""Outbound webhooks: endpoints, the Standard Webhooks signature, the payload schema per event
kind, the retry rules, and the dispatcher that drains the durable outbox.

The outbox rows are written by the store in the same commit as the event they carry (a trigger
on ``events``, see dripd/store/sqlite/migrations); the dispatcher (``dispatcher``) only reads
due rows and records each attempt, in its own task group, so a slow receiver never slows sends.
This package's ``__init__`` imports nothing with I/O: the store imports its records.
"""
