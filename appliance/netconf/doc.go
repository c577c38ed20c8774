// Package netconf brings up the box's network: loopback, then the first Ethernet link with
// DHCP, falling back to a configured static address when no DHCP server answers.
//
// The DHCP client is github.com/insomniacslk/dhcp's nclient4 (pure Go, raw packet sockets,
// used by u-root and many appliances); addresses and routes are set over netlink with
// github.com/vishvananda/netlink, the library Docker and Kubernetes' CNI plugins use. The
// lease is renewed at half its lifetime.
package netconf
