"""Loopback Binance-compatible exchange serving a freqtrade data directory."""
