"""The suite runs its many commands on claimed operators (`--operator NAME`): development
mode, which every audit entry records. Tests of logins and roles unset it themselves."""

import os


def pytest_configure() -> None:
    os.environ["MYNACARD_DEVELOPMENT"] = "1"
