"""Platform connectors, one module each, all behind the contract in ``connectors.base``."""
