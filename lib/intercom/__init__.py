"""The Intercom HTTP client shared by every action and trigger (see client.py for the design)."""
