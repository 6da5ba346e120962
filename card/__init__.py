"""The card: Java Card applets (card/applet/) and the host library that speaks APDUs
to any reader."""
