"""The dialogue policy: from what was understood and who is asking to what the bot replies."""
