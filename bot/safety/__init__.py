"""Safety mechanisms that hold whatever the model says: the deterministic crisis net."""
