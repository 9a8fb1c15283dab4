"""Moderator review over the store: the inbox, transcripts and their actions, the intent
annotations that become training data, NLU scores per model, and statistics.

Plain queries on `bot.storage.Database`, no web code: the dashboard's pages
(`bot.dashboard`) and the command line (`python -m bot nlu export-annotations`) both use them.
Test traffic (`messages.is_test`) never appears in the inbox, the queue or the statistics.
"""
