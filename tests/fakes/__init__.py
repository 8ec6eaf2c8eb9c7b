"""Wire-level stand-ins for platforms no test may call (X): real sockets on 127.0.0.1."""
