"""The SDN data plane: the host agent that reconciles the kernel with the controller's
per-host documents (router namespaces, VXLAN, fdb/neighbours, nftables)."""
