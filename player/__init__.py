"""The built-in HTML player: its page and static files, and the HLS test stream it plays."""
