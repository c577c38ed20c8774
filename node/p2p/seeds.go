package p2p

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"
)

// seedServices are the service bits the light client needs from a peer: blocks, witness
// data and compact filters. Seeds that support filtering are asked for them
// ("x49.<seed>", as btcd's connmgr does).
const seedServices = wire.SFNodeNetwork | wire.SFNodeWitness | wire.SFNodeCF

// seedTimeout bounds one DNS seed lookup.
const seedTimeout = 15 * time.Second

// resolveSeeds looks up every DNS seed of the network and returns the addresses found
// (host:DefaultPort), shuffled and without duplicates.
func (m *Manager) resolveSeeds(ctx context.Context) ([]string, error) {
	var (
		addrs []string
		errs  []error
		seen  = map[string]bool{}
	)
	for _, seed := range m.cfg.Params.DNSSeeds {
		ips, err := m.lookupSeed(ctx, seed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ip := range ips {
			addr := net.JoinHostPort(ip.Unmap().String(), m.cfg.Params.DefaultPort)
			if !seen[addr] {
				seen[addr] = true
				addrs = append(addrs, addr)
			}
		}
	}
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	if len(addrs) == 0 {
		if len(errs) == 0 {
			errs = append(errs, errors.New("no addresses"))
		}
		return nil, fmt.Errorf("p2p: dns seeds: %w", errors.Join(errs...))
	}
	m.st.seedLookups.Add(1)
	return addrs, nil
}

// lookupSeed resolves one seed; a seed that filters by service bits is asked for peers
// with seedServices first, then without.
func (m *Manager) lookupSeed(ctx context.Context, seed chaincfg.DNSSeed) ([]netip.Addr, error) {
	names := []string{seed.Host}
	if seed.HasFiltering {
		names = []string{fmt.Sprintf("x%x.%s", uint64(seedServices), seed.Host), seed.Host}
	}
	var errs []error
	for _, name := range names {
		lctx, cancel := context.WithTimeout(ctx, seedTimeout)
		ips, err := m.cfg.Resolver.LookupNetIP(lctx, "ip", name)
		cancel()
		if err == nil && len(ips) > 0 {
			m.log.Info("dns seed", "name", name, "addresses", len(ips))
			return ips, nil
		}
		if err == nil {
			err = errors.New("no addresses")
		}
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return nil, errors.Join(errs...)
}

// discover keeps up to TargetPeers connections to peers found through the DNS seeds. Each
// address gets one session; when a session ends its slot goes to the next address found.
// The seeds are asked again when every address has been tried and no peer is left, after a
// back-off that grows while the addresses they return yield no handshake.
func (m *Manager) discover(ctx context.Context) {
	var (
		pool       []string
		active     = map[string]bool{}
		ended      = make(chan string, m.cfg.TargetPeers)
		handshaked = make(chan struct{}, 1) // a session since the last lookup completed a handshake
		delay      = m.cfg.BackoffMin
		looked     = false
	)
	for ctx.Err() == nil {
		for len(active) < m.cfg.TargetPeers && len(pool) > 0 {
			addr := pool[0]
			pool = pool[1:]
			m.mu.Lock()
			skip := active[addr] || m.running[addr] || time.Now().Before(m.banned[addr])
			m.mu.Unlock()
			if skip {
				continue
			}
			active[addr] = true
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				ok, err := m.session(ctx, addr)
				m.st.disconnected.Add(1)
				if ok {
					select {
					case handshaked <- struct{}{}:
					default:
					}
				}
				m.log.Info("seed peer session ended", "peer", addr, "err", err)
				ended <- addr
			}()
		}
		if len(active) == 0 && len(pool) == 0 {
			if looked {
				select {
				case <-handshaked:
					delay = m.cfg.BackoffMin
				default:
					delay = min(2*delay, m.cfg.BackoffMax)
				}
				wait := delay + time.Duration(rand.Int64N(int64(delay)/2+1))
				m.log.Info("no peers left, asking the dns seeds again", "in", wait)
				if !sleep(ctx, wait) {
					return
				}
			}
			looked = true
			addrs, err := m.resolveSeeds(ctx)
			if err != nil {
				m.log.Warn("dns seeds gave no peers", "err", err)
				continue
			}
			pool = addrs
			continue
		}
		select {
		case addr := <-ended:
			delete(active, addr)
		case <-ctx.Done():
			return
		}
	}
}
