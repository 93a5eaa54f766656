"""Domain logic: plain functions over a SQLAlchemy session. The caller owns the transaction
(``db.session.transaction``); functions flush but never commit. Every function that reads or
changes a customer's data takes the ``account_id`` it acts for and filters on it."""
