"""The connector's tests: the sailor's harness plugin holds the policy for missing prerequisites (RabbitMQ,
node/npm, buildah/podman: skipped locally, a failure under CI=true), shared with the sailor's own tests."""

pytest_plugins = ["elasticio_sailor.testing.plugin"]
