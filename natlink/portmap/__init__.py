"""Router port mapping: UPnP IGD, NAT-PMP and PCP behind one Router; a pure plan and a reconciler."""
