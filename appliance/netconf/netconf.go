package netconf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// Static is a fixed IPv4 configuration.
type Static struct {
	Address netip.Prefix `json:"address"` // e.g. 192.168.1.50/24
	Gateway netip.Addr   `json:"gateway"`
	DNS     []netip.Addr `json:"dns,omitempty"`
}

// ParseStatic reads "ADDR/PREFIX[,GATEWAY[,DNS...]]", the form of the anya.static= kernel
// command line parameter.
func ParseStatic(s string) (*Static, error) {
	parts := strings.Split(s, ",")
	p, err := netip.ParsePrefix(parts[0])
	if err != nil || !p.Addr().Is4() {
		return nil, fmt.Errorf("static address %q: want an IPv4 address with prefix, like 192.168.1.50/24", parts[0])
	}
	st := &Static{Address: p}
	if len(parts) > 1 && parts[1] != "" {
		if st.Gateway, err = netip.ParseAddr(parts[1]); err != nil {
			return nil, fmt.Errorf("static gateway %q: %w", parts[1], err)
		}
	}
	for _, d := range parts[min(2, len(parts)):] {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("static DNS %q: %w", d, err)
		}
		st.DNS = append(st.DNS, a)
	}
	return st, nil
}

// LoadStatic reads a static configuration saved as JSON (Static's fields); a missing file
// means none is configured.
func LoadStatic(path string) (*Static, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read network config: %w", err)
	}
	var c struct {
		Static *Static `json:"static"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("read network config %s: %w", path, err)
	}
	return c.Static, nil
}

// Manager configures the network. Set the fields, then call Run.
type Manager struct {
	Log         *slog.Logger
	Interface   string        // the link to configure; empty: the first physical Ethernet link
	Static      *Static       // fallback; nil when none is configured
	DHCPTimeout time.Duration // before falling back to Static; default 20s
	ResolvConf  string        // written from DHCP or Static DNS; default /etc/resolv.conf

	mu      sync.Mutex
	methods map[string]string
	addrs   map[string]netip.Prefix // the address this manager set on each link
}

// Methods returns how each configured link got its address ("dhcp" or "static").
func (m *Manager) Methods() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for k, v := range m.methods {
		out[k] = v
	}
	return out
}

func (m *Manager) setMethod(link, method string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.methods == nil {
		m.methods = map[string]string{}
	}
	m.methods[link] = method
}

// Run configures the network and keeps the DHCP lease renewed until ctx is done.
func (m *Manager) Run(ctx context.Context) {
	if m.DHCPTimeout == 0 {
		m.DHCPTimeout = 20 * time.Second
	}
	if m.ResolvConf == "" {
		m.ResolvConf = "/etc/resolv.conf"
	}
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			m.Log.Error("bring up loopback", "err", err)
		}
	} else {
		m.Log.Error("find loopback", "err", err)
	}
	link, err := m.waitEthernet(ctx, 30*time.Second)
	if err != nil {
		m.Log.Error("no Ethernet link", "err", err)
		return
	}
	name := link.Attrs().Name
	if err := netlink.LinkSetUp(link); err != nil {
		m.Log.Error("bring up link", "link", name, "err", err)
		return
	}
	backoff := 5 * time.Second
	for ctx.Err() == nil {
		lease, err := m.dhcp(ctx, name)
		if err == nil {
			renew, err := m.applyLease(link, lease)
			if err != nil {
				m.Log.Error("apply DHCP lease", "link", name, "err", err)
			} else {
				backoff = 5 * time.Second
				select {
				case <-ctx.Done():
				case <-time.After(renew):
				}
				continue
			}
		} else if ctx.Err() == nil {
			m.Log.Warn("DHCP failed", "link", name, "err", err)
			if m.Static != nil && m.Methods()[name] != "static" {
				if err := m.applyStatic(link, m.Static); err != nil {
					m.Log.Error("apply static address", "link", name, "err", err)
				} else {
					m.Log.Info("static address configured", "link", name, "address", m.Static.Address)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Minute)
	}
}

// waitEthernet waits for the first non-loopback link with an Ethernet address (its driver may
// still be probing).
func (m *Manager) waitEthernet(ctx context.Context, timeout time.Duration) (netlink.Link, error) {
	deadline := time.Now().Add(timeout)
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("list links: %w", err)
		}
		for _, l := range links {
			a := l.Attrs()
			if m.Interface != "" && a.Name == m.Interface ||
				m.Interface == "" && a.Name != "lo" && len(a.HardwareAddr) == 6 && l.Type() == "device" {
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("none appeared within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (m *Manager) dhcp(ctx context.Context, ifname string) (*nclient4.Lease, error) {
	c, err := nclient4.New(ifname, nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(3))
	if err != nil {
		return nil, fmt.Errorf("DHCP client on %s: %w", ifname, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, m.DHCPTimeout)
	defer cancel()
	hostname, _ := os.Hostname()
	lease, err := c.Request(ctx, dhcpv4.WithOption(dhcpv4.OptHostName(hostname)))
	if err != nil {
		return nil, fmt.Errorf("DHCP on %s: %w", ifname, err)
	}
	return lease, nil
}

// applyLease sets the leased address, default route and DNS, and returns when to renew.
func (m *Manager) applyLease(link netlink.Link, lease *nclient4.Lease) (time.Duration, error) {
	ack := lease.ACK
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok {
		return 0, fmt.Errorf("lease without an IPv4 address")
	}
	mask := ack.SubnetMask()
	if mask == nil {
		mask = net.CIDRMask(24, 32)
	}
	bits, _ := mask.Size()
	st := &Static{Address: netip.PrefixFrom(ip, bits)}
	if r := ack.Router(); len(r) > 0 {
		st.Gateway, _ = netip.AddrFromSlice(r[0].To4())
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok {
			st.DNS = append(st.DNS, a)
		}
	}
	if err := m.configure(link, st); err != nil {
		return 0, err
	}
	lt := ack.IPAddressLeaseTime(time.Hour)
	m.setMethod(link.Attrs().Name, "dhcp")
	m.Log.Info("DHCP lease", "link", link.Attrs().Name, "address", st.Address, "gateway", st.Gateway, "lease", lt)
	return max(lt/2, 30*time.Second), nil
}

func (m *Manager) applyStatic(link netlink.Link, st *Static) error {
	if err := m.configure(link, st); err != nil {
		return err
	}
	m.setMethod(link.Attrs().Name, "static")
	return nil
}

func (m *Manager) configure(link netlink.Link, st *Static) error {
	// Drop the address set before (a static fallback replaced by a lease, or an old lease)
	// first: deleting a primary address also deletes the secondaries of its subnet.
	name := link.Attrs().Name
	m.mu.Lock()
	old, had := m.addrs[name]
	if m.addrs == nil {
		m.addrs = map[string]netip.Prefix{}
	}
	m.mu.Unlock()
	if had && old != st.Address {
		stale := &netlink.Addr{IPNet: &net.IPNet{IP: old.Addr().AsSlice(), Mask: net.CIDRMask(old.Bits(), 32)}}
		if err := netlink.AddrDel(link, stale); err != nil {
			m.Log.Warn("remove old address", "link", name, "address", old, "err", err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: st.Address.Addr().AsSlice(), Mask: net.CIDRMask(st.Address.Bits(), 32)}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("set address %s: %w", st.Address, err)
	}
	m.mu.Lock()
	m.addrs[name] = st.Address
	m.mu.Unlock()
	if st.Gateway.IsValid() {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: st.Gateway.AsSlice()}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("set default route via %s: %w", st.Gateway, err)
		}
	}
	if len(st.DNS) > 0 {
		var b strings.Builder
		for _, d := range st.DNS {
			fmt.Fprintf(&b, "nameserver %s\n", d)
		}
		if err := os.WriteFile(m.ResolvConf, []byte(b.String()), 0o644); err != nil {
			m.Log.Warn("write resolv.conf", "err", err)
		}
	}
	return nil
}
