"""The elastic.io dialect: its settings, its platform API client, and the dialect itself."""
