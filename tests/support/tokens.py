"""A named upload token for tests that write the way an app does: configured and always sent."""

APP_TOKEN = "an-app-token-for-the-tests-0123"
APP_AUTH = {"tokens": {"app": APP_TOKEN}}  # the [auth] section of such a server
BEARER = {"authorization": f"Bearer {APP_TOKEN}"}
