"""Migration from (and back to) Kea: its JSON config dialect, its memfile lease CSV, and the
mappings between Kea's configuration and fastdhcp's (docs/migrating-from-kea.md)."""
