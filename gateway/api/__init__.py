"""HTTP routers, one module per resource; each stays HTTP plumbing over `gateway.pipeline`."""
