package netconf

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
)

// The network tests run the real Manager against a real DHCP server, each in its own network
// namespace joined by a veth pair. They need root and iproute2's `ip`. The parts that must run
// inside a namespace are this test binary re-executed under `ip netns exec`.

const (
	serverAddr = "192.168.77.1"
	leaseAddr  = "192.168.77.50"
)

func TestMain(m *testing.M) {
	switch os.Getenv("NETCONF_HELPER") {
	case "dhcp-server":
		os.Exit(dhcpServer())
	case "client":
		os.Exit(client())
	}
	os.Exit(m.Run())
}

func dhcpServer() int {
	handler := func(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
		typ := dhcpv4.MessageTypeOffer
		if req.MessageType() == dhcpv4.MessageTypeRequest {
			typ = dhcpv4.MessageTypeAck
		}
		resp, err := dhcpv4.NewReplyFromRequest(req,
			dhcpv4.WithMessageType(typ),
			dhcpv4.WithYourIP(net.ParseIP(leaseAddr)),
			dhcpv4.WithServerIP(net.ParseIP(serverAddr)),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(serverAddr))),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithRouter(net.ParseIP(serverAddr)),
			dhcpv4.WithDNS(net.ParseIP(serverAddr)),
			dhcpv4.WithLeaseTime(3600),
		)
		if err != nil {
			return
		}
		conn.WriteTo(resp.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
	}
	srv, err := server4.NewServer("vs", &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, handler)
	if err != nil {
		fmt.Println("server:", err)
		return 1
	}
	fmt.Println("serving")
	srv.Serve()
	return 0
}

// client runs the Manager and prints a RESULT line each time the link's configuration changes.
func client() int {
	static, err := ParseStatic(os.Getenv("NETCONF_STATIC"))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	resolv, _ := os.CreateTemp("", "resolv")
	defer os.Remove(resolv.Name())
	m := &Manager{Log: slog.New(slog.NewTextHandler(os.Stderr, nil)), Interface: "vc", Static: static,
		DHCPTimeout: 3 * time.Second, ResolvConf: resolv.Name()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go m.Run(ctx)
	last := ""
	for ctx.Err() == nil {
		if method := m.Methods()["vc"]; method != "" {
			link, _ := netlink.LinkByName("vc")
			addrs, _ := netlink.AddrList(link, netlink.FAMILY_V4)
			routes, _ := netlink.RouteList(link, netlink.FAMILY_V4)
			var gw string
			for _, r := range routes {
				if r.Gw != nil {
					gw = r.Gw.String()
				}
			}
			var list []string
			for _, a := range addrs {
				list = append(list, a.IPNet.String())
			}
			dns, _ := os.ReadFile(resolv.Name())
			res := fmt.Sprintf("RESULT method=%s addrs=%s gw=%s dns=%q", method, strings.Join(list, ","), gw, strings.TrimSpace(string(dns)))
			if res != last {
				fmt.Println(res)
				last = res
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestNetworkInNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("creates network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("ANYA_REQUIRE_ALL") != "" {
			t.Fatalf("needs root and iproute2 (euid %d, %v)", os.Geteuid(), err)
		}
		t.Skip("needs root and iproute2")
	}
	cns, sns := fmt.Sprintf("anyac%d", os.Getpid()), fmt.Sprintf("anyas%d", os.Getpid())
	ip(t, "netns", "add", cns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", cns).Run() })
	ip(t, "netns", "add", sns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", sns).Run() })
	ip(t, "-n", cns, "link", "add", "vc", "type", "veth", "peer", "name", "vs", "netns", sns)
	ip(t, "-n", sns, "addr", "add", serverAddr+"/24", "dev", "vs")
	ip(t, "-n", sns, "link", "set", "vs", "up")

	// One client, as PID 1 runs it: no DHCP server at first, so it falls back to the static
	// address; then a server appears and the lease replaces the static address.
	cl := exec.Command("ip", "netns", "exec", cns, os.Args[0], "-test.run=^$")
	cl.Env = append(os.Environ(), "NETCONF_HELPER=client", "NETCONF_STATIC=192.168.77.9/24,192.168.77.1,9.9.9.9")
	clOut, _ := cl.StdoutPipe()
	var clErr strings.Builder
	cl.Stderr = &clErr
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cl.Process.Kill(); cl.Wait() }()
	results := make(chan string, 10)
	go func() {
		s := bufio.NewScanner(clOut)
		for s.Scan() {
			if strings.HasPrefix(s.Text(), "RESULT") {
				results <- s.Text()
			}
		}
		close(results)
	}()
	next := func(want string) {
		t.Helper()
		select {
		case got, ok := <-results:
			if !ok || got != want {
				t.Fatalf("got  %s\nwant %s\nclient log:\n%s", got, want, clErr.String())
			}
		case <-time.After(40 * time.Second):
			t.Fatalf("timed out waiting for %s\nclient log:\n%s", want, clErr.String())
		}
	}
	next(`RESULT method=static addrs=192.168.77.9/24 gw=192.168.77.1 dns="nameserver 9.9.9.9"`)

	srv := exec.Command("ip", "netns", "exec", sns, os.Args[0], "-test.run=^$")
	srv.Env = append(os.Environ(), "NETCONF_HELPER=dhcp-server")
	stdout, _ := srv.StdoutPipe()
	srv.Stderr = srv.Stdout
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if !strings.Contains(line, "serving") {
		rest, _ := io.ReadAll(stdout)
		t.Fatalf("DHCP server: %s%s", line, rest)
	}
	next(fmt.Sprintf(`RESULT method=dhcp addrs=%s/24 gw=%s dns="nameserver %s"`, leaseAddr, serverAddr, serverAddr))
}
