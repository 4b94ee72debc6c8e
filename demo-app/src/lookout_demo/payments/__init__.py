"""The payments service: authorises and captures payments, with configurable failures."""
