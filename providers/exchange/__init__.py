"""Exchange Web Services: connector (exchangelib in a thread pool), mapping, and a local EWS emulator."""
