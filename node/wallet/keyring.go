package wallet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/storage"
)

// DefaultGapLimit is the number of unused addresses watched past the last used one.
const DefaultGapLimit = 20

// account is one of the wallet's descriptors with its two chains (receive and change).
type account struct {
	id     string // the descriptor's checksum: the key of its persisted state
	desc   *keys.Descriptor
	chains [2]*keys.Descriptor // keys.Receive, keys.Change
	// next is, per chain, the index after the highest used one; issued the next receive
	// index NewAddress hands out; derived the addresses derived so far (the watched window).
	next    [2]uint32
	issued  [2]uint32
	derived [2][]*derived
}

// derived is one derived output of an account.
type derived struct {
	acct  *account
	chain keys.Chain
	index uint32
	addr  *keys.Address
}

// keyState is an account chain's persisted state.
type keyState struct {
	Next   uint32 `json:"next"`
	Issued uint32 `json:"issued"`
}

// keyring derives the wallet's scripts from its descriptors and keeps, per chain, a window
// of gap unused addresses past the highest used one.
type keyring struct {
	net   keys.Network
	gap   uint32
	table *storage.Table[keyState]

	mu       sync.RWMutex
	accounts []*account
	scripts  map[string]*derived // scriptPubKey → derivation
}

// parseAccount parses a multipath "<0;1>/*" descriptor of net.
func parseAccount(s string, net keys.Network) (*account, error) {
	d, err := keys.ParseDescriptor(strings.TrimSpace(s))
	if err != nil {
		return nil, err
	}
	if !d.IsRange() {
		return nil, errors.New("descriptor has no /* (a wallet needs one address per index)")
	}
	if d.Multipath() != 2 {
		return nil, errors.New("descriptor must be multipath with receive and change chains (.../<0;1>/*)")
	}
	for i, k := range d.Keys {
		if k.XPub.IsMainnet() != net.IsMainnet() {
			return nil, fmt.Errorf("key %d: %w", i+1, ErrWrongNetwork)
		}
	}
	canon := d.String()
	a := &account{id: canon[strings.IndexByte(canon, '#')+1:], desc: d}
	singles := d.Singles()
	a.chains[keys.Receive], a.chains[keys.Change] = singles[0], singles[1]
	return a, nil
}

func newKeyring(db *storage.DB, net keys.Network, descriptors []string, gap int) (*keyring, error) {
	if len(descriptors) == 0 {
		return nil, errors.New("no descriptors")
	}
	if gap <= 0 {
		gap = DefaultGapLimit
	}
	k := &keyring{net: net, gap: uint32(gap), table: storage.NewTable[keyState](db, Subsystem, "keyring"),
		scripts: map[string]*derived{}}
	seen := map[string]bool{}
	for i, s := range descriptors {
		a, err := parseAccount(s, net)
		if err != nil {
			return nil, fmt.Errorf("descriptor %d: %w", i+1, err)
		}
		if seen[a.id] {
			return nil, fmt.Errorf("descriptor %d repeats another", i+1)
		}
		seen[a.id] = true
		for c := range a.chains {
			st, _, err := k.table.Get(stateKey(a, keys.Chain(c)))
			if err != nil {
				return nil, err
			}
			a.next[c], a.issued[c] = st.Next, st.Issued
			if _, err := k.extend(a, keys.Chain(c)); err != nil {
				return nil, fmt.Errorf("descriptor %d: %w", i+1, err)
			}
		}
		k.accounts = append(k.accounts, a)
	}
	return k, nil
}

func stateKey(a *account, c keys.Chain) string { return fmt.Sprintf("%s/%d", a.id, c) }

// extend derives the chain's addresses up to next+gap and returns the new ones. The caller
// holds k.mu (or has not published k yet).
func (k *keyring) extend(a *account, c keys.Chain) ([]*derived, error) {
	var added []*derived
	for n := uint32(len(a.derived[c])); n < a.next[c]+k.gap; n++ {
		addr, err := a.chains[c].DeriveAddress(k.net, n)
		if err != nil {
			return added, fmt.Errorf("derive %d/%d: %w", c, n, err)
		}
		d := &derived{acct: a, chain: c, index: n, addr: addr}
		a.derived[c] = append(a.derived[c], d)
		k.scripts[string(addr.ScriptPubKey)] = d
		added = append(added, d)
	}
	return added, nil
}

// save persists an account chain's indexes.
func (k *keyring) save(a *account, c keys.Chain) error {
	if err := k.table.Put(stateKey(a, c), keyState{Next: a.next[c], Issued: a.issued[c]}); err != nil {
		return fmt.Errorf("keyring: save: %w", err)
	}
	return nil
}

// storeScripts is every derived script in the form the Store wants.
func (k *keyring) storeScripts() Scripts {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make(Scripts, len(k.scripts))
	for s, d := range k.scripts {
		out[s] = d.script()
	}
	return out
}

func (d *derived) script() Script {
	return Script{Path: d.acct.fullPath(0, d.chain, d.index), Type: d.acct.desc.Type}
}

// watched returns every derived scriptPubKey, for matching block filters.
func (k *keyring) watched() [][]byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([][]byte, 0, len(k.scripts))
	for _, d := range k.scripts {
		out = append(out, d.addr.ScriptPubKey)
	}
	return out
}

// lookup finds the derivation of a scriptPubKey.
func (k *keyring) lookup(pkScript []byte) (*derived, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	d, ok := k.scripts[string(pkScript)]
	return d, ok
}

// markUsed records the scripts (outputs seen paying the wallet) as used and moves the
// windows, looking at the scripts again whenever a window grew (an address just derived
// may be among them, paid by the same block), until nothing changes. It returns the
// scripts derived.
func (k *keyring) markUsed(pkScripts [][]byte) (Scripts, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	added := Scripts{}
	for {
		grew := false
		type chainKey struct {
			a *account
			c keys.Chain
		}
		dirty := map[chainKey]bool{}
		for _, pk := range pkScripts {
			d, ok := k.scripts[string(pk)]
			if !ok || d.index < d.acct.next[d.chain] {
				continue
			}
			a := d.acct
			a.next[d.chain] = d.index + 1
			dirty[chainKey{a, d.chain}] = true
			ds, err := k.extend(a, d.chain)
			if err != nil {
				return added, err
			}
			for _, n := range ds {
				added[string(n.addr.ScriptPubKey)] = n.script()
				grew = true
			}
		}
		for ck := range dirty {
			if err := k.save(ck.a, ck.c); err != nil {
				return added, err
			}
		}
		if !grew {
			return added, nil
		}
	}
}

// outputScripts lists the output scripts of txs.
func outputScripts(txs ...*wire.MsgTx) [][]byte {
	var out [][]byte
	for _, tx := range txs {
		for _, o := range tx.TxOut {
			out = append(out, o.PkScript)
		}
	}
	return out
}

// nextReceive hands out a receive address of the first account: a fresh one at each call,
// but never past the gap limit (then it starts again at the first unused one).
func (k *keyring) nextReceive() (*derived, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	a := k.accounts[0]
	c := keys.Receive
	i := max(a.issued[c], a.next[c])
	if i >= a.next[c]+k.gap {
		i = a.next[c]
	}
	a.issued[c] = i + 1
	if err := k.save(a, c); err != nil {
		return nil, err
	}
	return a.derived[c][i], nil
}

// nextChange is the first unused change address of the first account. It stays the same
// until a transaction paying it is seen.
func (k *keyring) nextChange() *derived {
	k.mu.RLock()
	defer k.mu.RUnlock()
	a := k.accounts[0]
	return a.derived[keys.Change][a.next[keys.Change]]
}

// primary is the account that receives and takes change.
func (k *keyring) primary() *account { return k.accounts[0] }

// keyPath is the derivation of one key of the account at chain/index: the master
// fingerprint as PSBT fields hold it (little-endian) and the full path from the master.
// A key without origin is its own master.
func (a *account) keyPath(key int, c keys.Chain, index uint32) (uint32, []uint32) {
	k := a.chains[c].Keys[key]
	var path []uint32
	var fp keys.Fingerprint
	if k.Origin != nil {
		fp = k.Origin.Fingerprint
		path = append(path, k.Origin.Path...)
	} else {
		fp = k.XPub.Fingerprint()
	}
	for _, st := range k.Steps {
		path = append(path, st[0])
	}
	if k.Wildcard {
		path = append(path, index)
	}
	return binary.LittleEndian.Uint32(fp[:]), path
}

func (a *account) fullPath(key int, c keys.Chain, index uint32) keys.Path {
	_, p := a.keyPath(key, c, index)
	return keys.Path(p)
}

// threshold is the number of signatures an input of the account needs.
func (a *account) threshold() int {
	if a.desc.Type == keys.ScriptWSHSortedMulti {
		return a.desc.Threshold
	}
	return 1
}

// derivations fills the BIP32 fields of a PSBT input or output for the derived output:
// every key's fingerprint and path (the taproot fields for tr), and the redeem or witness
// script.
func (d *derived) derivations() (bip32 []*psbt.Bip32Derivation, tap []*psbt.TaprootBip32Derivation, internal []byte) {
	a := d.acct
	if a.desc.Type == keys.ScriptTR {
		fp, path := a.keyPath(0, d.chain, d.index)
		x := d.addr.PubKeys[0][1:]
		return nil, []*psbt.TaprootBip32Derivation{{XOnlyPubKey: x, MasterKeyFingerprint: fp, Bip32Path: path}}, x
	}
	// Keys in descriptor order; the address lists them sorted for sortedmulti, so derive
	// each key's public key again to pair it with its path.
	for i, k := range a.chains[d.chain].Keys {
		fp, path := a.keyPath(i, d.chain, d.index)
		child, err := k.XPub.Derive(childPath(k, d.index))
		if err != nil {
			continue // unreachable: the address was derived from the same keys
		}
		bip32 = append(bip32, &psbt.Bip32Derivation{PubKey: child.PublicKey(), MasterKeyFingerprint: fp, Bip32Path: path})
	}
	return bip32, nil, nil
}

// childPath is the path from a single-path descriptor key's xpub to its key at index.
func childPath(k keys.DescriptorKey, index uint32) keys.Path {
	p := make(keys.Path, 0, len(k.Steps)+1)
	for _, st := range k.Steps {
		p = append(p, st[0])
	}
	if k.Wildcard {
		p = append(p, index)
	}
	return p
}
