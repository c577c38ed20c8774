package keys

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// Extended keys of BIP32 test vectors 1 and 2, used by the BIP380/389 and Core vectors below.
const (
	v1Master  = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"
	v2Master  = "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB"
	v2Child0  = "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH"
	v2Deep    = "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL"
	v2DeepPrv = "xprvA1RpRA33e1JQ7ifknakTFpgNXPmW2YvmhqLQYMmrj4xJXXWYpDPS3xz7iAxn8L39njGVyuoseXzU6rcxFLJ8HFsTjSyQbLYnMpCqE2VbFWc"
	v3Child0  = "xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y"
	v3Child0P = "xprv9uPDJpEQgRQfDcW7BkF7eTya6RPxXeJCqCJGHuCJ4GiRVLzkTXBAJMu2qaMWPrS7AANYqdq6vcBcBUdJCVVFceUvJFjaPdGZ2y9WACViL4L"
)

func TestDescriptorChecksum(t *testing.T) {
	tests := []struct {
		source, desc, sum string
	}{
		{"BIP380", "raw(deadbeef)", "89f8spxm"},
		{"Core descriptor_tests", "sh(multi(2,[00000000/111'/222]" + v2DeepPrv + "," + v3Child0P + "/0))", "ggrsrxfy"},
		{"Core descriptor_tests", "sh(multi(2,[00000000/111'/222]" + v2Deep + "," + v3Child0 + "/0))", "tjg09x5t"},
		{"Core descriptor_tests", "sh(multi(3,[00000000/111'/222]" + v2Deep + "," + v3Child0 + "/0))", "d4x0uxyv"},
		{"Core deriveaddresses help", "wpkh([d34db33f/84h/0h/0h]xpub6DJ2dNUysrn5Vt36jH2KLBT2i1auw1tTSSomg8PhqNiUtx8QX2SvC9nrHu81fT41fvDUnhMjEzQgXnQjKEu3oaqMSzhSrHMxyyoEAmUHQbY/0/*)", "cjjspncu"},
	}
	for _, tt := range tests {
		got, err := DescriptorChecksum(tt.desc)
		if err != nil || got != tt.sum {
			t.Errorf("%s: checksum %q %v, want %q", tt.source, got, err, tt.sum)
		}
		with, _ := AddChecksum(tt.desc)
		if body, sum, err := SplitChecksum(with); err != nil || body != tt.desc || sum != tt.sum {
			t.Errorf("%s: SplitChecksum(%q) = %q %q %v", tt.source, with, body, sum, err)
		}
	}

	// BIP380 checksum test vectors.
	valid := []string{"raw(deadbeef)#89f8spxm", "raw(deadbeef)"}
	for _, s := range valid {
		if _, _, err := SplitChecksum(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	invalid := map[string]string{
		"missing checksum":        "raw(deadbeef)#",
		"too long checksum":       "raw(deadbeef)#89f8spxmx",
		"too short checksum":      "raw(deadbeef)#89f8spx",
		"error in payload":        "raw(deedbeef)#89f8spxm",
		"error in checksum":       "raw(deedbeef)##9f8spxm",
		"invalid characters":      "raw(Ü)#00000000",
		"Core: error in checksum": "sh(multi(2,[00000000/111'/222]" + v2Deep + "," + v3Child0 + "/0))#tjq09x4t",
		"Core: multiple #":        "sh(multi(2,[00000000/111'/222]" + v2Deep + "," + v3Child0 + "/0))##tjq09x4t",
	}
	for name, s := range invalid {
		if _, _, err := SplitChecksum(s); err == nil {
			t.Errorf("%s: %q accepted", name, s)
		}
		if _, err := ParseDescriptor(s); err == nil {
			t.Errorf("%s: ParseDescriptor accepted %q", name, s)
		}
	}
	if _, err := AddChecksum("raw(deadbeef)#89f8spxm"); err == nil {
		t.Error("AddChecksum accepted a descriptor with a checksum")
	}
}

// TestAccountDescriptors checks the emitted descriptors of every purpose, that they parse back
// to themselves, and that the parsed descriptor derives the account's addresses.
func TestAccountDescriptors(t *testing.T) {
	master := masterOf(t, abandonAbout, Mainnet)
	want := map[Purpose]string{
		PurposeBIP44: "pkh([73c5da0a/44h/0h/0h]xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3DSSSSoekkudhUd9yLb6qx39T9nMdj/0/*)",
		PurposeBIP49: "sh(wpkh([73c5da0a/49h/0h/0h]XPUB/0/*))",
		PurposeBIP84: "wpkh([73c5da0a/84h/0h/0h]XPUB/0/*)",
		PurposeBIP86: "tr([73c5da0a/86h/0h/0h]xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ/0/*)",
	}
	for p, body := range want {
		acct, err := NewAccount(master, p, Mainnet, 0)
		if err != nil {
			t.Fatal(err)
		}
		body = strings.Replace(body, "XPUB", acct.XPub.String(), 1)
		d, err := acct.Descriptor(Receive)
		if err != nil {
			t.Fatal(err)
		}
		sum, _ := DescriptorChecksum(body)
		if d != body+"#"+sum {
			t.Errorf("%v: descriptor\n got %s\nwant %s#%s", p, d, body, sum)
		}
		change, _ := acct.Descriptor(Change)
		if change != strings.Replace(d[:len(d)-9], "/0/*", "/1/*", 1)+"#"+change[len(change)-8:] {
			t.Errorf("%v: change descriptor %s", p, change)
		}
		multi, _ := acct.MultipathDescriptor()
		if !strings.Contains(multi, "/<0;1>/*") {
			t.Errorf("%v: multipath %s", p, multi)
		}

		for _, s := range []string{d, change, multi} {
			pd, err := ParseDescriptor(s)
			if err != nil {
				t.Fatalf("%v: ParseDescriptor(%s): %v", p, s, err)
			}
			if pd.String() != s {
				t.Errorf("%v: round trip\n got %s\nwant %s", p, pd, s)
			}
		}
		pm, _ := ParseDescriptor(multi)
		singles := pm.Singles()
		if len(singles) != 2 || singles[0].String() != d || singles[1].String() != change {
			t.Errorf("%v: Singles of %s = %v", p, multi, singles)
		}
		for ci, s := range singles {
			for i := uint32(0); i < 4; i++ {
				got, err := s.DeriveAddress(Mainnet, i)
				if err != nil {
					t.Fatal(err)
				}
				ref, _ := acct.Address(Chain(ci), i)
				if got.Address != ref.Address || hex.EncodeToString(got.ScriptPubKey) != hex.EncodeToString(ref.ScriptPubKey) {
					t.Errorf("%v %d/%d: descriptor gives %s, account %s", p, ci, i, got.Address, ref.Address)
				}
			}
		}
		if _, err := pm.DeriveAddress(Mainnet, 0); err == nil {
			t.Errorf("%v: DeriveAddress on a multipath descriptor", p)
		}
		if _, err := singles[0].DeriveAddress(Testnet, 0); !errors.Is(err, ErrWrongNetwork) {
			t.Errorf("%v: xpub descriptor on testnet: %v", p, err)
		}
	}
	// The first BIP84 and BIP86 addresses from their BIPs, through the descriptor.
	for p, addr := range map[Purpose]string{
		PurposeBIP84: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
		PurposeBIP86: "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
		PurposeBIP49: "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf",
		PurposeBIP44: "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA",
	} {
		acct, _ := NewAccount(master, p, Mainnet, 0)
		s, _ := acct.Descriptor(Receive)
		d, _ := ParseDescriptor(s)
		a, err := d.DeriveAddress(Mainnet, 0)
		if err != nil || a.Address != addr {
			t.Errorf("%v: %v %v, want %s", p, a, err, addr)
		}
	}
}

func TestMultisigDescriptorRoundTrip(t *testing.T) {
	var cs []*Account
	for _, net := range []Network{Testnet} {
		for _, phrase := range []string{abandonAbout, "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong"} {
			a, err := NewAccount(masterOf(t, phrase, net), PurposeBIP48, net, 0)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, a)
		}
	}
	ms, err := NewMultisig(Testnet, 1, cs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{must(ms.Descriptor(Receive)), must(ms.Descriptor(Change)), must(ms.MultipathDescriptor())} {
		d, err := ParseDescriptor(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if d.String() != s || d.Threshold != 1 || len(d.Keys) != 2 || d.Type != ScriptWSHSortedMulti {
			t.Errorf("round trip %s -> %s", s, d)
		}
		if !strings.Contains(s, "[73c5da0a/48h/1h/0h/2h]tpub") {
			t.Errorf("origin missing in %s", s)
		}
		for ci, single := range d.Singles() {
			if d.Multipath() == 1 {
				ci = map[bool]int{true: 0, false: 1}[strings.Contains(s, "/0/*")]
			}
			for i := uint32(0); i < 3; i++ {
				got, err := single.DeriveAddress(Testnet, i)
				if err != nil {
					t.Fatal(err)
				}
				ref, _ := ms.Address(Chain(ci), i)
				if got.Address != ref.Address || !strings.HasPrefix(got.Address, "tb1q") {
					t.Errorf("%d/%d: %s vs %s", ci, i, got.Address, ref.Address)
				}
			}
		}
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// TestDescriptorExternalVectors: scripts from Bitcoin Core's descriptor_tests.cpp, BIP389's
// expansion vectors and BIP386's key-path tr() vector.
func TestDescriptorExternalVectors(t *testing.T) {
	// Core: wpkh([ffffffff/13']xpub…/1/2/*) and its first three scripts.
	coreWPKH := "wpkh([ffffffff/13']" + v2Child0 + "/1/2/*)"
	coreScripts := []string{
		"0014326b2249e3a25d5dc60935f044ee835d090ba859",
		"0014af0bd98abc2f2cae66e36896a39ffe2d32984fb7",
		"00141fa798efd1cbf95cebf912c031b8a4a6e9fb9f27",
	}
	d, err := ParseDescriptor(coreWPKH)
	if err != nil {
		t.Fatal(err)
	}
	if d.String()[:len(d.String())-9] != strings.Replace(coreWPKH, "13'", "13h", 1) {
		t.Errorf("canonical form %s", d)
	}
	for i, want := range coreScripts {
		a, err := d.DeriveAddress(Mainnet, uint32(i))
		if err != nil || hex.EncodeToString(a.ScriptPubKey) != want {
			t.Errorf("Core wpkh %d: %x %v, want %s", i, a.ScriptPubKey, err, want)
		}
	}

	// BIP389: <1;3> expands to …/1/2/* and …/3/2/*; the first is Core's descriptor above. (The
	// BIP text lacks the closing parenthesis of this vector; it is added here.)
	mp, err := ParseDescriptor("wpkh([ffffffff/13h]" + v2Child0 + "/<1;3>/2/*)")
	if err != nil {
		t.Fatal(err)
	}
	singles := mp.Singles()
	if len(singles) != 2 || singles[0].String() != d.String() ||
		singles[1].String() != must(AddChecksum("wpkh([ffffffff/13h]"+v2Child0+"/3/2/*)")) {
		t.Errorf("BIP389 expansion: %v", singles)
	}
	a, _ := singles[0].DeriveAddress(Mainnet, 0)
	if hex.EncodeToString(a.ScriptPubKey) != coreScripts[0] {
		t.Errorf("BIP389 first expansion script %x", a.ScriptPubKey)
	}
	mp3, err := ParseDescriptor("pkh(" + v2Master + "/<0;1;2>)")
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range mp3.Singles() {
		if s.String() != must(AddChecksum("pkh("+v2Master+"/"+string(rune('0'+i))+")")) {
			t.Errorf("BIP389 pkh expansion %d: %s", i, s)
		}
	}

	// Core: sortedmulti(2,xpub…/*,xpub…/0/0/*) as bare scripts; under wsh() they are the
	// witness scripts.
	wsh, err := ParseDescriptor("wsh(sortedmulti(2," + v2Deep + "/*," + v3Child0 + "/0/0/*))")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		"5221025d5fc65ebb8d44a5274b53bac21ff8307fec2334a32df05553459f8b1f7fe1b62102fbd47cc8034098f0e6a94c6aeee8528abf0a2153a5d8e46d325b7284c046784652ae",
		"52210264fd4d1f5dea8ded94c61e9641309349b62f27fbffe807291f664e286bfbe6472103f4ece6dfccfa37b211eb3d0af4d0c61dba9ef698622dc17eecdf764beeb005a652ae",
		"5221022ccabda84c30bad578b13c89eb3b9544ce149787e5b538175b1d1ba259cbb83321024d902e1a2fc7a8755ab5b694c575fce742c48d9ff192e63df5193e4c7afe1f9c52ae",
	} {
		a, err := wsh.DeriveAddress(Mainnet, uint32(i))
		if err != nil || hex.EncodeToString(a.WitnessScript) != want {
			t.Errorf("Core sortedmulti %d: %x %v", i, a.WitnessScript, err)
		}
	}

	// BIP386: tr(a34b…) → 512077aa… (x-only internal key, no script tree).
	a, err = buildAddress(ScriptTR, 0, [][]byte{mustHex(t, "02a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd")}, Mainnet.Params())
	if err != nil || hex.EncodeToString(a.ScriptPubKey) != "512077aab6e066f8a7419c5ab714c12c67d25007ed55a43cadcacb4d7a970a093f11" {
		t.Errorf("BIP386 tr(): %x %v", a.ScriptPubKey, err)
	}

	// BIP380 key expressions with xpubs, in wpkh(); ' and h and mixed markers in origins.
	for _, k := range []string{
		v2Deep,
		"[deadbeef/0h/1h/2h]" + v2Deep,
		"[deadbeef/0h/1h/2h]" + v2Deep + "/3/4/5",
		"[deadbeef/0h/1h/2h]" + v2Deep + "/3/4/5/*",
		"[deadbeef/0'/1'/2']" + v2Deep + "/3/4/5/*",
		"[deadbeef/0'/1h/2H]" + v2Deep + "/3/4/5/*",
		"[DEADBEEF]" + v2Deep,
	} {
		d, err := ParseDescriptor("wpkh(" + k + ")")
		if err != nil {
			t.Errorf("wpkh(%s): %v", k, err)
			continue
		}
		if d.Keys[0].Origin != nil && d.Keys[0].Origin.Fingerprint.String() != "deadbeef" {
			t.Errorf("fingerprint %s", d.Keys[0].Origin.Fingerprint)
		}
	}
}

func TestParseDescriptorErrors(t *testing.T) {
	k := "[deadbeef/0h/0h/0h]" + v2Deep
	tests := []struct {
		name, desc, reason string
	}{
		// BIP380 invalid key expressions (the hex-key ones are refused as unsupported).
		{"children in origin", "wpkh([deadbeef/0h/0h/0h/*]" + v2Deep + ")", "origin"},
		{"trailing slash in origin", "wpkh([deadbeef/0h/0h/0h/]" + v2Deep + ")", "origin"},
		{"short fingerprint", "wpkh([deadbef/0h/0h/0h]" + v2Deep + ")", "fingerprint"},
		{"long fingerprint", "wpkh([deadbeeef/0h/0h/0h]" + v2Deep + ")", "fingerprint"},
		{"bad hardened f", "wpkh([deadbeef/0f/0f/0f]" + v2Deep + ")", "decimal"},
		{"bad hardened -", "wpkh([deadbeef/-0/-0/-0]" + v2Deep + ")", "decimal"},
		{"index out of range", "wpkh(" + v2Master + "/2147483648)", "range"},
		{"invalid index", "wpkh(" + v2Master + "/1aa)", "decimal"},
		{"multiple origins", "wpkh([aaaaaaaa][aaaaaaaa]" + v2Master + "/0)", "'['"},
		{"missing origin start", "wpkh(aaaaaaaa]" + v2Master + "/0)", "']'"},
		{"non-hex fingerprint", "wpkh([gaaaaaaa]" + v2Master + "/0)", "fingerprint"},
		{"origin without key", "wpkh([deadbeef])", "extended public key"},
		{"hex key", "wpkh(0260b2003c386519fc9eadf2b5cf124dd8eea4c4e68d5e154050a9346ea98ce600)", "hex"},
		{"WIF key", "wpkh(L4rK1yDtCWekvXuE6oXD9jCYfFNV2cWRpVuPLBcCU2z8TrisoyY1)", "extended public key"},
		// Keys this package never puts in descriptors.
		{"private key", "wpkh([deadbeef/0h]" + v2DeepPrv + "/0/*)", "private"},
		{"SLIP-132 key", "wpkh(zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs/0/*)", "SLIP-132"},
		{"bad xpub checksum", "wpkh(" + v2Master[:100] + "x" + v2Master[101:] + ")", "checksum"},
		{"hardened after xpub", "wpkh(" + v2Master + "/1h/*)", "hardened"},
		{"hardened wildcard", "wpkh(" + v2Master + "/*h)", "hardened"},
		{"wildcard not last", "wpkh(" + v2Master + "/*/1)", "last"},
		// BIP389 invalid multipath (with an xpub so the multipath rule is what fails).
		{"two multipath steps", "pkh(" + v2Master + "/<0;1>/<2;3>)", "more than one multipath"},
		{"multipath in origin", "pkh([deadbeef/<0;1>]" + v2Master + "/0)", "origin"},
		{"multipath lengths", "wsh(sortedmulti(1," + v2Deep + "/<1;2;3>/0/*," + v2Master + "/0/<3;4>/*))", "different lengths"},
		{"empty multipath", "wpkh(" + v2Master + "/<>/*)", "two values"},
		{"missing multipath start", "wpkh(" + v2Master + "/0>/*)", "multipath"},
		{"missing multipath end", "wpkh(" + v2Master + "/<0/*)", "'>'"},
		{"missing multipath index", "wpkh(" + v2Master + "/<0;>/*)", "empty element"},
		{"repeated multipath value", "wpkh(" + v2Master + "/<0;0>/*)", "repeats"},
		{"hardened multipath", "wpkh(" + v2Master + "/<0h;1>/*)", "hardened"},
		// BIP386 invalid and unsupported tr().
		{"tr in wsh", "wsh(tr(" + v2Master + "))", "sortedmulti"},
		{"tr in sh", "sh(tr(" + v2Master + "))", "wpkh"},
		{"tr with tree", "tr(" + v2Master + ",pk(" + v3Child0 + "))", "script tree"},
		// Script structure.
		{"unknown function", "combo(" + k + ")", "unsupported"},
		{"multi", "wsh(multi(1," + k + "))", "sortedmulti"},
		{"sh(wsh)", "sh(wsh(sortedmulti(1," + k + ")))", "wpkh"},
		{"trailing text", "wpkh(" + k + ")x", "after"},
		{"missing paren", "wpkh(" + k, "')'"},
		{"two keys in wpkh", "wpkh(" + k + "," + v2Master + ")", "')'"},
		{"empty", "", "script function"},
		{"threshold 0", "wsh(sortedmulti(0," + k + "))", "threshold"},
		{"threshold above n", "wsh(sortedmulti(2," + k + "))", "threshold"},
		{"threshold leading zero", "wsh(sortedmulti(01," + k + "))", "threshold"},
		{"no keys", "wsh(sortedmulti(1))", "no keys"},
		{"mixed networks", "wsh(sortedmulti(1," + v2Master + ",tpubD6NzVbkrYhZ4XgiXtGrdW5XDAPFCL9h7we1vwNCpn8tGbBcgfVYjXyhWo4E1xkh56hjod1RhGjxbaTLV3X4FyWuejifB9jusQ46QzG87VKp))", "network"},
		{"too many keys", "wsh(sortedmulti(1" + strings.Repeat(","+v2Master, 21) + "))", "more than 20"},
		{"too long", "wpkh(" + strings.Repeat("1", maxDescriptorLen) + ")", "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDescriptor(tt.desc)
			if err == nil {
				t.Fatalf("accepted: %s", d)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not mention %q", err, tt.reason)
			}
			if strings.Contains(err.Error(), "xprv") || strings.Contains(err.Error(), v2DeepPrv[10:30]) {
				t.Errorf("error quotes the input: %v", err)
			}
		})
	}
}
