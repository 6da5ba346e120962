"""Constants shared by the hsm tests (a uniquely named module, not `conftest`)."""

USER_PIN = "user-pin-1234"
SO_PIN = "so-pin-87654321"
TOKEN = "hsm-test"
