"""The shop service: catalog, carts, checkout and login."""
