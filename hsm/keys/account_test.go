package keys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
)

const abandonAbout = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

func masterOf(t *testing.T, phrase string, net Network) *XPrv {
	t.Helper()
	seed, err := SeedFromMnemonic(phrase, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer clear(seed)
	m, err := NewMasterKey(seed, net)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Zero)
	return m
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wif returns the compressed WIF of the private key at path below master.
func wif(t *testing.T, master *XPrv, path Path, net Network) string {
	t.Helper()
	k, err := master.Derive(path)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Zero()
	priv, err := k.ECPrivKey()
	if err != nil {
		t.Fatal(err)
	}
	defer priv.Zero()
	w, err := btcutil.NewWIF(priv, net.Params(), true)
	if err != nil {
		t.Fatal(err)
	}
	return w.String()
}

// TestBIP84Vectors: the test vectors of BIP84 (bip-0084.mediawiki).
func TestBIP84Vectors(t *testing.T) {
	master := masterOf(t, abandonAbout, Mainnet)
	root, _ := master.SerializeSLIP132(PurposeBIP84)
	if string(root) != "zprvAWgYBBk7JR8Gjrh4UJQ2uJdG1r3WNRRfURiABBE3RvMXYSrRJL62XuezvGdPvG6GFBZduosCc1YP5wixPox7zhZLfiUm8aunE96BBa4Kei5" {
		t.Errorf("rootnode %s", root)
	}
	acct, err := NewAccount(master, PurposeBIP84, Mainnet, 0)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := master.Derive(acct.Origin.Path)
	xpriv, _ := k.SerializeSLIP132(PurposeBIP84)
	k.Zero()
	if string(xpriv) != "zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvgGpNgYSJA9iefm1yYNZKEm7z6qUWCroSQnE" {
		t.Errorf("account xpriv %s", xpriv)
	}
	// The BIP gives no account xpub; SLIP-132's vectors do (same mnemonic and path).
	if got := acct.SLIP132(); got != "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs" {
		t.Errorf("account zpub %s", got)
	}
	if acct.Origin.String() != "[73c5da0a/84h/0h/0h]" {
		t.Errorf("origin %s", acct.Origin)
	}
	tests := []struct {
		chain          Chain
		index          uint32
		privkey, pub   string
		address        string
		scriptPubKeyHx string
	}{
		{Receive, 0, "KyZpNDKnfs94vbrwhJneDi77V6jF64PWPF8x5cdJb8ifgg2DUc9d", "0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c", "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", ""},
		{Receive, 1, "Kxpf5b8p3qX56DKEe5NqWbNUP9MnqoRFzZwHRtsFqhzuvUJsYZCy", "03e775fd51f0dfb8cd865d9ff1cca2a158cf651fe997fdc9fee9c1d3b5e995ea77", "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g", ""},
		{Change, 0, "KxuoxufJL5csa1Wieb2kp29VNdn92Us8CoaUG3aGtPtcF3AzeXvF", "03025324888e429ab8e3dbaf1f7802648b9cd01e9b418485c5fa4c1b9b5700e1a6", "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el", ""},
	}
	for _, tt := range tests {
		a, err := acct.Address(tt.chain, tt.index)
		if err != nil {
			t.Fatal(err)
		}
		if a.Address != tt.address {
			t.Errorf("%d/%d: address %s, want %s", tt.chain, tt.index, a.Address, tt.address)
		}
		if hex.EncodeToString(a.PubKeys[0]) != tt.pub {
			t.Errorf("%d/%d: pubkey %x", tt.chain, tt.index, a.PubKeys[0])
		}
		want := append([]byte{0x00, 0x14}, btcutil.Hash160(mustHex(t, tt.pub))...)
		if !bytes.Equal(a.ScriptPubKey, want) {
			t.Errorf("%d/%d: scriptPubKey %x", tt.chain, tt.index, a.ScriptPubKey)
		}
		if got := wif(t, master, acct.Origin.Path.Child(uint32(tt.chain), tt.index), Mainnet); got != tt.privkey {
			t.Errorf("%d/%d: privkey %s, want %s", tt.chain, tt.index, got, tt.privkey)
		}
	}
}

// TestBIP86Vectors: the test vectors of BIP86 (bip-0086.mediawiki).
func TestBIP86Vectors(t *testing.T) {
	master := masterOf(t, abandonAbout, Mainnet)
	root, _ := master.Serialize()
	rootPub, _ := master.XPub()
	if string(root) != "xprv9s21ZrQH143K3GJpoapnV8SFfukcVBSfeCficPSGfubmSFDxo1kuHnLisriDvSnRRuL2Qrg5ggqHKNVpxR86QEC8w35uxmGoggxtQTPvfUu" ||
		rootPub.String() != "xpub661MyMwAqRbcFkPHucMnrGNzDwb6teAX1RbKQmqtEF8kK3Z7LZ59qafCjB9eCRLiTVG3uxBxgKvRgbubRhqSKXnGGb1aoaqLrpMBDrVxga8" {
		t.Errorf("root %s %s", root, rootPub)
	}
	acct, err := NewAccount(master, PurposeBIP86, Mainnet, 0)
	if err != nil {
		t.Fatal(err)
	}
	if acct.XPub.String() != "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ" {
		t.Errorf("account xpub %s", acct.XPub)
	}
	if acct.SLIP132() != acct.XPub.String() {
		t.Error("BIP86 has no SLIP-132 version; SLIP132 must give the xpub")
	}
	k, _ := master.Derive(acct.Origin.Path)
	if s, _ := k.Serialize(); string(s) != "xprv9xgqHN7yz9MwCkxsBPN5qetuNdQSUttZNKw1dcYTV4mkaAFiBVGQziHs3NRSWMkCzvgjEe3n9xV8oYywvM8at9yRqyaZVz6TYYhX98VjsUk" {
		t.Errorf("account xprv %s", s)
	}
	k.Zero()
	tests := []struct {
		chain                 Chain
		index                 uint32
		xprv, xpub            string
		internal, output, spk string
		address               string
	}{
		{Receive, 0,
			"xprvA449goEeU9okwCzzZaxiy475EQGQzBkc65su82nXEvcwzfSskb2hAt2WymrjyRL6kpbVTGL3cKtp9herYXSjjQ1j4stsXXiRF7kXkCacK3T",
			"xpub6H3W6JmYJXN49h5TfcVjLC3onS6uPeUTTJoVvRC8oG9vsTn2J8LwigLzq5tHbrwAzH9DGo6ThGUdWsqce8dGfwHVBxSbixjDADGGdzF7t2B",
			"cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115",
			"a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c",
			"5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c",
			"bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"},
		{Receive, 1,
			"xprvA449goEeU9okyiF1LmKiDaTgeXvmh87DVyRd35VPbsSop8n8uALpbtrUhUXByPFKK7C2yuqrB1FrhiDkEMC4RGmA5KTwsE1aB5jRu9zHsuQ",
			"xpub6H3W6JmYJXN4CCKUSnriaiQRCZmG6aq4sCMDqTu1ACyngw7HShf59hAxYjXgKDuuHThVEUzdHrc3aXCr9kfvQvZPit5dnD3K9xVRBzjK3rX",
			"83dfe85a3151d2517290da461fe2815591ef69f2b18a2ce63f01697a8b313145",
			"a82f29944d65b86ae6b5e5cc75e294ead6c59391a1edc5e016e3498c67fc7bbb",
			"5120a82f29944d65b86ae6b5e5cc75e294ead6c59391a1edc5e016e3498c67fc7bbb",
			"bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh"},
		{Change, 0,
			"xprvA3Ln3Gt3aphvUgzgEDT8vE2cYqb4PjFfpmbiFKphxLg1FjXQpkAk5M1ZKDY15bmCAHA35jTiawbFuwGtbDZogKF1WfjwxML4gK7WfYW5JRP",
			"xpub6GL8SnQwRCGDhB59LEz9HMyM6sRYoByXBzXK3iEKWgCz8XrZNHUzd9L3AUBELW5NzA7dEFvMas1F84TuPH3xqdUA5tumaGWFgihJzWytXe3",
			"399f1b2f4393f29a18c937859c5dd8a77350103157eb880f02e8c08214277cef",
			"882d74e5d0572d5a816cef0041a96b6c1de832f6f9676d9605c44d5e9a97d3dc",
			"5120882d74e5d0572d5a816cef0041a96b6c1de832f6f9676d9605c44d5e9a97d3dc",
			"bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7"},
	}
	for _, tt := range tests {
		path := acct.Origin.Path.Child(uint32(tt.chain), tt.index)
		k, _ := master.Derive(path)
		s, _ := k.Serialize()
		p, _ := k.XPub()
		k.Zero()
		if string(s) != tt.xprv || p.String() != tt.xpub {
			t.Errorf("%s: keys %s %s", path, s, p)
		}
		a, err := acct.Address(tt.chain, tt.index)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(a.PubKeys[0][1:]) != tt.internal {
			t.Errorf("%s: internal key %x", path, a.PubKeys[0][1:])
		}
		if hex.EncodeToString(a.OutputKey) != tt.output {
			t.Errorf("%s: output key %x", path, a.OutputKey)
		}
		if hex.EncodeToString(a.ScriptPubKey) != tt.spk {
			t.Errorf("%s: scriptPubKey %x", path, a.ScriptPubKey)
		}
		if a.Address != tt.address {
			t.Errorf("%s: address %s, want %s", path, a.Address, tt.address)
		}
	}
}

// TestBIP49Vectors: the testnet vectors of BIP49 (bip-0049.mediawiki).
func TestBIP49Vectors(t *testing.T) {
	master := masterOf(t, abandonAbout, Testnet)
	root, _ := master.SerializeSLIP132(PurposeBIP49)
	if string(root) != "uprv8tXDerPXZ1QsVNjUJWTurs9kA1KGfKUAts74GCkcXtU8GwnH33GDRbNJpEqTvipfCyycARtQJhmdfWf8oKt41X9LL1zeD2pLsWmxEk3VAwd" {
		t.Errorf("masterseed %s", root)
	}
	acct, err := NewAccount(master, PurposeBIP49, Testnet, 0)
	if err != nil {
		t.Fatal(err)
	}
	if acct.Origin.Path.String() != "m/49h/1h/0h" {
		t.Errorf("path %s", acct.Origin.Path)
	}
	k, _ := master.Derive(acct.Origin.Path)
	xpriv, _ := k.SerializeSLIP132(PurposeBIP49)
	k.Zero()
	if string(xpriv) != "uprv91G7gZkzehuMVxDJTYE6tLivdF8e4rvzSu1LFfKw3b2Qx1Aj8vpoFnHdfUZ3hmi9jsvPifmZ24RTN2KhwB8BfMLTVqaBReibyaFFcTP1s9n" {
		t.Errorf("account0Xpriv %s", xpriv)
	}
	if acct.SLIP132() != "upub5EFU65HtV5TeiSHmZZm7FUffBGy8UKeqp7vw43jYbvZPpoVsgU93oac7Wk3u6moKegAEWtGNF8DehrnHtv21XXEMYRUocHqguyjknFHYfgY" {
		t.Errorf("account0Xpub %s", acct.SLIP132())
	}
	a, err := acct.Address(Receive, 0)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(a.PubKeys[0]) != "03a1af804ac108a8a51782198c2d034b28bf90c8803f5a53f76276fa69a4eae77f" {
		t.Errorf("public key %x", a.PubKeys[0])
	}
	if hex.EncodeToString(a.RedeemScript) != "001438971f73930f6c141d977ac4fd4a727c854935b3" {
		t.Errorf("scriptSig %x", a.RedeemScript)
	}
	if hex.EncodeToString(a.ScriptPubKey) != "a914336caa13e08b96080a32b5d818d59b4ab3b3674287" {
		t.Errorf("scriptPubKey %x", a.ScriptPubKey)
	}
	if a.Address != "2Mww8dCYPUpKHofjgcXcBCEGmniw9CoaiD2" {
		t.Errorf("address %s", a.Address)
	}
	k, _ = master.Derive(acct.Origin.Path.Child(0, 0))
	priv, _ := k.ECPrivKey()
	if hex.EncodeToString(priv.Serialize()) != "c9bdb49cfbaedca21c4b1f3a7803c34636b1d7dc55a717132443fc3f4c5867e8" {
		t.Errorf("private key %x", priv.Serialize())
	}
	priv.Zero()
	k.Zero()
	if got := wif(t, master, acct.Origin.Path.Child(0, 0), Testnet); got != "cULrpoZGXiuC19Uhvykx7NugygA3k86b3hmdCeyvHYQZSxojGyXJ" {
		t.Errorf("WIF %s", got)
	}
}

// TestSLIP132Vectors: the Bitcoin test vectors of SLIP-0132 (satoshilabs/slips slip-0132.md).
func TestSLIP132Vectors(t *testing.T) {
	master := masterOf(t, abandonAbout, Mainnet)
	tests := []struct {
		purpose   Purpose
		prv, pub  string
		firstAddr string
	}{
		{PurposeBIP44,
			"xprv9xpXFhFpqdQK3TmytPBqXtGSwS3DLjojFhTGht8gwAAii8py5X6pxeBnQ6ehJiyJ6nDjWGJfZ95WxByFXVkDxHXrqu53WCRGypk2ttuqncb",
			"xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3DSSSSoekkudhUd9yLb6qx39T9nMdj",
			"1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"},
		{PurposeBIP49,
			"yprvAHwhK6RbpuS3dgCYHM5jc2ZvEKd7Bi61u9FVhYMpgMSuZS613T1xxQeKTffhrHY79hZ5PsskBjcc6C2V7DrnsMsNaGDaWev3GLRQRgV7hxF",
			"ypub6Ww3ibxVfGzLrAH1PNcjyAWenMTbbAosGNB6VvmSEgytSER9azLDWCxoJwW7Ke7icmizBMXrzBx9979FfaHxHcrArf3zbeJJJUZPf663zsP",
			"37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"},
		{PurposeBIP84,
			"zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvgGpNgYSJA9iefm1yYNZKEm7z6qUWCroSQnE",
			"zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs",
			"bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"},
	}
	for _, tt := range tests {
		acct, err := NewAccount(master, tt.purpose, Mainnet, 0)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := master.Derive(acct.Origin.Path)
		prv, _ := k.SerializeSLIP132(tt.purpose)
		k.Zero()
		if string(prv) != tt.prv {
			t.Errorf("%v: %s", tt.purpose, prv)
		}
		if acct.SLIP132() != tt.pub {
			t.Errorf("%v: %s", tt.purpose, acct.SLIP132())
		}
		a, err := acct.Address(Receive, 0)
		if err != nil || a.Address != tt.firstAddr {
			t.Errorf("%v: first address %v %v", tt.purpose, a, err)
		}
		// The SLIP-132 forms parse back to the plain key (for xpub that is itself).
		x, err := ParseXPub(tt.pub)
		if err != nil || !x.Equal(acct.XPub) {
			t.Errorf("%v: ParseXPub(SLIP-132) = %v, %v", tt.purpose, x, err)
		}
		if !strings.HasPrefix(acct.XPub.String(), "xpub") {
			t.Errorf("%v: plain form %s", tt.purpose, acct.XPub)
		}
		if p, err := ParseXPrv(tt.prv); err != nil {
			t.Error(err)
		} else if s, _ := p.Serialize(); !strings.HasPrefix(string(s), "xprv") {
			t.Errorf("%v: ParseXPrv(SLIP-132) serializes as %s…", tt.purpose, s[:4])
		}
	}
}

func TestNetworks(t *testing.T) {
	tests := []struct {
		name     string
		net      Network
		prefix   string // of the BIP84 address
		keyStart string
		coin     uint32
	}{
		{"mainnet", Mainnet, "bc1q", "xpub", 0},
		{"testnet", Testnet, "tb1q", "tpub", 1},
		{"testnet4", Testnet4, "tb1q", "tpub", 1},
		{"signet", Signet, "tb1q", "tpub", 1},
		{"regtest", Regtest, "bcrt1q", "tpub", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNetwork(strings.ToUpper(tt.name))
			if err != nil || n != tt.net || n.String() != tt.name {
				t.Fatalf("ParseNetwork: %v %v", n, err)
			}
			if n.CoinType() != tt.coin || n.Params().HDCoinType != tt.coin {
				t.Errorf("coin type %d, chaincfg %d", n.CoinType(), n.Params().HDCoinType)
			}
			master := masterOf(t, abandonAbout, n)
			acct, err := NewAccount(master, PurposeBIP84, n, 0)
			if err != nil {
				t.Fatal(err)
			}
			if acct.Origin.Path[1] != tt.coin+Hardened {
				t.Errorf("path %s", acct.Origin.Path)
			}
			a, err := acct.Address(Receive, 0)
			if err != nil || !strings.HasPrefix(a.Address, tt.prefix) {
				t.Errorf("address %v %v", a, err)
			}
			if !strings.HasPrefix(acct.XPub.String(), tt.keyStart) {
				t.Errorf("key %s", acct.XPub)
			}
			d, _ := acct.Descriptor(Receive)
			if !strings.Contains(d, "]"+tt.keyStart) {
				t.Errorf("descriptor %s", d)
			}
		})
	}
	if _, err := ParseNetwork("litecoin"); err == nil {
		t.Error("ParseNetwork accepted litecoin")
	}
	var zero Network
	if zero.Valid() || zero.Params() != nil {
		t.Error("the zero Network is valid")
	}
	// Keys of the wrong kind are refused.
	mainMaster := masterOf(t, abandonAbout, Mainnet)
	if _, err := NewAccount(mainMaster, PurposeBIP84, Testnet, 0); !errors.Is(err, ErrWrongNetwork) {
		t.Errorf("mainnet master, testnet account: %v", err)
	}
	acct, _ := NewAccount(mainMaster, PurposeBIP84, Mainnet, 0)
	if _, err := NewWatchAccount(PurposeBIP84, Regtest, acct.Origin, acct.XPub); !errors.Is(err, ErrWrongNetwork) {
		t.Errorf("xpub on regtest: %v", err)
	}
}

func TestAccountErrors(t *testing.T) {
	master := masterOf(t, abandonAbout, Mainnet)
	acct, _ := NewAccount(master, PurposeBIP84, Mainnet, 0)
	child, _ := master.Derive(Path{1})
	defer child.Zero()
	tests := []struct {
		name string
		err  func() error
	}{
		{"purpose 0", func() error { _, err := NewAccount(master, 0, Mainnet, 0); return err }},
		{"purpose 45", func() error { _, err := NewAccount(master, 45, Mainnet, 0); return err }},
		{"zero network", func() error { _, err := NewAccount(master, PurposeBIP84, 0, 0); return err }},
		{"hardened account", func() error { _, err := NewAccount(master, PurposeBIP84, Mainnet, Hardened); return err }},
		{"not a master", func() error { _, err := NewAccount(child, PurposeBIP84, Mainnet, 0); return err }},
		{"chain 2", func() error { _, err := acct.Address(2, 0); return err }},
		{"hardened index", func() error { _, err := acct.Address(Receive, Hardened); return err }},
		{"chain 2 descriptor", func() error { _, err := acct.Descriptor(2); return err }},
		{"watch depth mismatch", func() error {
			_, err := NewWatchAccount(PurposeBIP84, Mainnet, KeyOrigin{Path: Path{1, 2}}, acct.XPub)
			return err
		}},
	}
	for _, tt := range tests {
		if tt.err() == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	// BIP48 accounts are cosigners: no single-key addresses or descriptors.
	ms, _ := NewAccount(master, PurposeBIP48, Mainnet, 0)
	if ms.Origin.Path.String() != "m/48h/0h/0h/2h" {
		t.Errorf("BIP48 path %s", ms.Origin.Path)
	}
	if !strings.HasPrefix(ms.SLIP132(), "Zpub") {
		t.Errorf("BIP48 SLIP-132 %s", ms.SLIP132())
	}
	if _, err := ms.Address(Receive, 0); err == nil {
		t.Error("BIP48 account gave a single-key address")
	}
	if _, err := ms.MultipathDescriptor(); err == nil {
		t.Error("BIP48 account gave a single-key descriptor")
	}
}

// TestMultisig builds a 2-of-3 from three seeds and checks the witness script against one made
// independently with txscript.MultiSigScript, and that cosigner order does not matter.
func TestMultisig(t *testing.T) {
	var cosigners []*Account
	for _, phrase := range []string{
		abandonAbout,
		"legal winner thank year wave sausage worth useful legal winner thank yellow",
		"letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
	} {
		m := masterOf(t, phrase, Mainnet)
		a, err := NewAccount(m, PurposeBIP48, Mainnet, 0)
		if err != nil {
			t.Fatal(err)
		}
		cosigners = append(cosigners, a)
	}
	ms, err := NewMultisig(Mainnet, 2, cosigners...)
	if err != nil {
		t.Fatal(err)
	}
	rev, _ := NewMultisig(Mainnet, 2, cosigners[2], cosigners[0], cosigners[1])
	for _, chain := range []Chain{Receive, Change} {
		for i := uint32(0); i < 3; i++ {
			a, err := ms.Address(chain, i)
			if err != nil {
				t.Fatal(err)
			}
			var pks []*btcutil.AddressPubKey
			var raw [][]byte
			for _, c := range cosigners {
				child, err := c.XPub.Derive(Path{uint32(chain), i})
				if err != nil {
					t.Fatal(err)
				}
				raw = append(raw, child.PublicKey())
			}
			sort.Slice(raw, func(i, j int) bool { return bytes.Compare(raw[i], raw[j]) < 0 })
			for _, r := range raw {
				pk, _ := btcutil.NewAddressPubKey(r, Mainnet.Params())
				pks = append(pks, pk)
			}
			ws, err := txscript.MultiSigScript(pks, 2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.WitnessScript, ws) {
				t.Errorf("%d/%d: witness script %x, want %x", chain, i, a.WitnessScript, ws)
			}
			h := sha256.Sum256(ws)
			if !bytes.Equal(a.ScriptPubKey, append([]byte{0, 32}, h[:]...)) {
				t.Errorf("%d/%d: scriptPubKey %x", chain, i, a.ScriptPubKey)
			}
			if !strings.HasPrefix(a.Address, "bc1q") || len(a.Address) != 62 {
				t.Errorf("%d/%d: address %s", chain, i, a.Address)
			}
			b, _ := rev.Address(chain, i)
			if b.Address != a.Address {
				t.Errorf("%d/%d: cosigner order changed the address", chain, i)
			}
		}
	}
	d, err := ms.Descriptor(Receive)
	if err != nil {
		t.Fatal(err)
	}
	want := "wsh(sortedmulti(2,[73c5da0a/48h/0h/0h/2h]" + cosigners[0].XPub.String() + "/0/*,"
	if !strings.HasPrefix(d, want) {
		t.Errorf("descriptor %s", d)
	}
	mp, _ := ms.MultipathDescriptor()
	if strings.Count(mp, "/<0;1>/*") != 3 {
		t.Errorf("multipath descriptor %s", mp)
	}

	bad := []struct {
		name string
		fn   func() error
	}{
		{"threshold 0", func() error { _, err := NewMultisig(Mainnet, 0, cosigners...); return err }},
		{"threshold 4 of 3", func() error { _, err := NewMultisig(Mainnet, 4, cosigners...); return err }},
		{"no cosigners", func() error { _, err := NewMultisig(Mainnet, 1); return err }},
		{"duplicate key", func() error { _, err := NewMultisig(Mainnet, 2, cosigners[0], cosigners[0]); return err }},
		{"wrong network", func() error { _, err := NewMultisig(Testnet, 2, cosigners...); return err }},
		{"single-key account", func() error {
			m := masterOf(t, abandonAbout, Mainnet)
			a, _ := NewAccount(m, PurposeBIP84, Mainnet, 0)
			_, err := NewMultisig(Mainnet, 1, a)
			return err
		}},
	}
	for _, tt := range bad {
		if tt.fn() == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}
