"""`make bench` and `make bench-nlu`: how fast the bot answers, measured end to end.

The bot under load is the real one (`python -m bot run` in its own process, via
`bench.harness`) talking through python-telegram-bot to the Bot API emulator of the tests;
the NLU servers are real Rasa servers serving the trained model. See README, "Benchmarks".
"""
