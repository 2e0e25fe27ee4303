"""The sailor's tests: the harness's pytest plugin holds the policy for missing prerequisites (RabbitMQ,
node/npm: skipped locally, a failure under CI=true). These tests import the sailor only, never the connector
around it, so they leave with the package."""

pytest_plugins = ["elasticio_sailor.testing.plugin"]
