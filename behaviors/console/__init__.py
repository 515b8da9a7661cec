"""The staff console (``alerts serve``): live alerts in a web page, acknowledged and resolved
by name, from one or several robots' alert stores."""
