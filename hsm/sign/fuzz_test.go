package sign

import (
	"testing"

	"github.com/btcsuite/btcd/btcutil/hdkeychain"
)

// FuzzSignPSBT feeds arbitrary bytes to Sign (and Summarize) as a PSBT: they must never panic,
// and whatever they sign must serialize and parse again. The signer's master is the BIP174
// vectors' key, so the seeds reach the signing code.
func FuzzSignPSBT(f *testing.F) {
	var v bip174Vectors
	loadJSONTB(f, "bip174_signer.json", &v)
	m, err := hdkeychain.NewKeyFromString(v.Xprv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(unhex(f, v.Unsigned))
	f.Add([]byte(v.UnsignedBase64))
	f.Add(unhex(f, v.Combined))
	f.Add(unhex(f, v.Finalized))
	for _, c := range v.FailSigners {
		f.Add(unhex(f, c.PSBT))
	}
	tm := &testMasterKey{k: m, fp: fingerprint(f, m)}
	f.Add(serialize(f, p2wpkhSpend(f, tm, 1_000_000, 400_000, 598_000)))
	f.Add(serialize(f, p2trSpend(f, tm, 1_000_000, 400_000, 598_000, nil)))
	f.Add([]byte("psbt\xff\x01\x02\x04\x02\x00\x00\x00\x01\xfb\x04\x02\x00\x00\x00\x00"))

	s := newSigner(f, m, Policy{DailyLimit: 50 * 100_000_000, MaxFeePercent: 50, MaxFeeRate: 10_000}, &MemHistory{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := s.Summarize(data, SignOptions{AllowForeignInputs: true}); err != nil {
			return
		}
		res, err := s.Sign(data, SignOptions{AllowForeignInputs: true, Finalize: true})
		if err != nil {
			return
		}
		out, err := res.Bytes()
		if err != nil {
			return // btcd refuses to serialize some odd-but-parsable packets
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("signed PSBT does not parse again: %v", err)
		}
	})
}
