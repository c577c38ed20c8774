package keys

import (
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/chaincfg"
)

// Network is the Bitcoin network keys and addresses are made for. The zero value is not a
// network: every constructor rejects it, so a forgotten field can never silently mean mainnet.
type Network uint8

// Networks.
const (
	Mainnet  Network = iota + 1 // coin type 0, xpub, bc1…
	Testnet                     // testnet3: coin type 1, tpub, tb1…
	Testnet4                    // testnet4: coin type 1, tpub, tb1…
	Signet                      // default signet: coin type 1, tpub, tb1…
	Regtest                     // coin type 1, tpub, bcrt1…
)

var networkNames = map[Network]string{
	Mainnet:  "mainnet",
	Testnet:  "testnet",
	Testnet4: "testnet4",
	Signet:   "signet",
	Regtest:  "regtest",
}

// ParseNetwork reads a network name: "mainnet" (or "main", "bitcoin"), "testnet" (or
// "testnet3", "test"), "testnet4", "signet", "regtest". Case is ignored.
func ParseNetwork(s string) (Network, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "mainnet", "main", "bitcoin":
		return Mainnet, nil
	case "testnet", "testnet3", "test":
		return Testnet, nil
	case "testnet4":
		return Testnet4, nil
	case "signet":
		return Signet, nil
	case "regtest":
		return Regtest, nil
	}
	return 0, fmt.Errorf("keys: unknown network %q (want mainnet, testnet, testnet4, signet or regtest)", s)
}

// String returns the network's name as ParseNetwork reads it.
func (n Network) String() string {
	if s, ok := networkNames[n]; ok {
		return s
	}
	return fmt.Sprintf("Network(%d)", uint8(n))
}

// Valid reports whether n is one of the defined networks.
func (n Network) Valid() bool {
	_, ok := networkNames[n]
	return ok
}

// Params returns btcd's parameters for the network (address prefixes, HD version bytes), or nil
// for an invalid Network. The returned value is btcd's shared global: do not modify it.
func (n Network) Params() *chaincfg.Params {
	switch n {
	case Mainnet:
		return &chaincfg.MainNetParams
	case Testnet:
		return &chaincfg.TestNet3Params
	case Testnet4:
		return &chaincfg.TestNet4Params
	case Signet:
		return &chaincfg.SigNetParams
	case Regtest:
		return &chaincfg.RegressionNetParams
	}
	return nil
}

// CoinType is the BIP44 coin_type level for the network: 0 on mainnet, 1 on every test network
// (SLIP-44 registers 1 as "Testnet (all coins)").
func (n Network) CoinType() uint32 {
	if n == Mainnet {
		return 0
	}
	return 1
}

// IsMainnet reports whether n is mainnet. Extended keys only tell mainnet (xpub) from "some
// test network" (tpub), so this is the distinction keys carry.
func (n Network) IsMainnet() bool { return n == Mainnet }

func (n Network) check() error {
	if !n.Valid() {
		return fmt.Errorf("keys: invalid network %v", n)
	}
	return nil
}
