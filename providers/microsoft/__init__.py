"""Microsoft 365 provider (Graph contacts via msal + aiohttp): connector, mapping and a local HTTPS emulator."""
