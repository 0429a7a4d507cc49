"""Google People API provider: connector, mapping and a local emulator of the API."""
