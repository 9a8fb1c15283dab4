"""Understanding a user's message: the Rasa NLU client, the local server, the intent vocabulary."""
