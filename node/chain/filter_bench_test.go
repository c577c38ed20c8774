package chain

import (
	"math/rand/v2"
	"testing"

	"github.com/btcsuite/btcd/btcutil/gcs"
	"github.com/btcsuite/btcd/btcutil/gcs/builder"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// randomScripts returns n output scripts shaped like a block's: mostly P2WPKH (22 bytes),
// some P2TR (34) and P2PKH (25), drawn from a fixed seed.
func randomScripts(rng *rand.Rand, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		var s []byte
		switch r := rng.IntN(10); {
		case r < 6:
			s = append([]byte{0x00, 0x14}, make([]byte, 20)...)
		case r < 9:
			s = append([]byte{0x51, 0x20}, make([]byte, 32)...)
		default:
			s = append(append([]byte{0x76, 0xa9, 0x14}, make([]byte, 20)...), 0x88, 0xac)
		}
		for j := 2; j < len(s); j++ {
			s[j] = byte(rng.Uint32())
		}
		out[i] = s
	}
	return out
}

// benchFilter is a basic filter of a block with 2,000 random output scripts, and 1,000
// wallet scripts that are not in it (a scan mostly sees blocks that do not concern the
// wallet, where every script must be checked).
func benchFilter(b *testing.B) (*gcs.Filter, chainhash.Hash, [][]byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	block := chainhash.Hash{0xbe, 0xec}
	f, err := builder.WithKeyHash(&block).AddEntries(randomScripts(rng, 2000)).Build()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := f.NBytes()
	if err != nil {
		b.Fatal(err)
	}
	// Decode it as a filter received from a node would be.
	f, err = decodeFilter(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("filter: %d elements, %d bytes", f.N(), len(raw))
	return f, block, randomScripts(rng, 1000)
}

// BenchmarkMatchFilter compares the wallet's filter match (MatchFilter: one gcs MatchAny
// over all its scripts) with the anchor, one gcs Match per script, on the same filter and
// scripts in the same run. The ratio is reported in the package documentation.
func BenchmarkMatchFilter(b *testing.B) {
	f, block, wallet := benchFilter(b)
	key := builder.DeriveKey(&block)
	b.Run("MatchAny-1000", func(b *testing.B) {
		for b.Loop() {
			ok, err := MatchFilter(f, block, wallet)
			if err != nil || ok {
				b.Fatalf("match = %v, %v", ok, err)
			}
		}
	})
	b.Run("Match-1000x1", func(b *testing.B) {
		for b.Loop() {
			for _, s := range wallet {
				ok, err := f.Match(key, s)
				if err != nil || ok {
					b.Fatalf("match = %v, %v", ok, err)
				}
			}
		}
	})
	// gcs's two strategies behind MatchAny, for reference.
	b.Run("ZipMatchAny-1000", func(b *testing.B) {
		for b.Loop() {
			if ok, err := f.ZipMatchAny(key, wallet); err != nil || ok {
				b.Fatalf("match = %v, %v", ok, err)
			}
		}
	})
	b.Run("HashMatchAny-1000", func(b *testing.B) {
		for b.Loop() {
			if ok, err := f.HashMatchAny(key, wallet); err != nil || ok {
				b.Fatalf("match = %v, %v", ok, err)
			}
		}
	})
}
