package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
	"github.com/anya-edge/anya/node/regtest"
	"github.com/anya-edge/anya/storage"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// TestBoxSignedPSBTAcceptedByNode is the signer's end-to-end check against a real node: a
// watch-only wallet that knows only the box's exported descriptor receives coins on regtest,
// builds a PSBT spending them (with btcd's psbt package, not the box's code), the box signs it
// through its custody, and btcd accepts the transaction into a block. Once for a BIP84
// (P2WPKH) and once for a BIP86 (P2TR) descriptor.
func TestBoxSignedPSBTAcceptedByNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts btcd")
	}
	node := regtest.Start(t)
	node.Generate(101)
	params := keys.Regtest.Params()

	db, err := storage.Open(filepath.Join(t.TempDir(), "anya.db"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pass, _ := seal.NewPassphrase(seal.WithArgon2(seal.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}))
	custody, err := hsm.New(hsm.Config{DB: db, Network: keys.Regtest, Sealers: map[string]seal.Sealer{seal.KindPassphrase: pass},
		Policy: sign.Policy{MaxFeePercent: 5}})
	if err != nil {
		t.Fatal(err)
	}
	mnemonic, err := custody.NewMnemonic(12)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := custody.Setup(ctx, hsm.SetupRequest{Mnemonic: mnemonic, Protection: seal.KindPassphrase,
		Auth: seal.Auth{Passphrase: []byte("a passphrase for this test")}}); err != nil {
		t.Fatal(err)
	}
	st, _ := custody.Status()

	for _, purpose := range []string{"BIP84", "BIP86"} {
		t.Run(purpose, func(t *testing.T) {
			var desc string
			for _, a := range st.Accounts {
				if strings.HasPrefix(a.Purpose, purpose+" ") {
					desc = a.Descriptor
				}
			}
			// The watch-only side: everything comes from the exported descriptor.
			d, err := keys.ParseDescriptor(desc)
			if err != nil {
				t.Fatal(err)
			}
			singles := d.Singles()
			recv, err := singles[0].DeriveAddress(keys.Regtest, 0)
			if err != nil {
				t.Fatal(err)
			}
			change, err := singles[1].DeriveAddress(keys.Regtest, 0)
			if err != nil {
				t.Fatal(err)
			}
			origin := d.Keys[0].Origin
			fp := binary.LittleEndian.Uint32(origin.Fingerprint[:])
			recvPath := append(append([]uint32(nil), origin.Path...), 0, 0)
			changePath := append(append([]uint32(nil), origin.Path...), 1, 0)

			addr, err := btcutil.DecodeAddress(recv.Address, params)
			if err != nil {
				t.Fatal(err)
			}
			funding := node.SendTo(addr, 1_000_000)
			node.Generate(1)
			vout := -1
			for i, out := range funding.TxOut {
				if bytes.Equal(out.PkScript, recv.ScriptPubKey) {
					vout = i
				}
			}
			if vout < 0 {
				t.Fatal("funding transaction does not pay the descriptor's address")
			}

			dest := node.MiningAddress()
			destScript, _ := txscript.PayToAddrScript(dest)
			tx := wire.NewMsgTx(2)
			tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(ptr(funding.TxHash()), uint32(vout)), nil, nil))
			tx.AddTxOut(wire.NewTxOut(400_000, destScript))
			tx.AddTxOut(wire.NewTxOut(1_000_000-400_000-2_000, change.ScriptPubKey))
			p, err := psbt.NewFromUnsignedTx(tx)
			if err != nil {
				t.Fatal(err)
			}
			p.Inputs[0].WitnessUtxo = funding.TxOut[vout]
			p.Inputs[0].SighashType = txscript.SigHashDefault
			if purpose == "BIP86" {
				p.Inputs[0].TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: recv.PubKeys[0][1:], MasterKeyFingerprint: fp, Bip32Path: recvPath}}
				p.Inputs[0].TaprootInternalKey = recv.PubKeys[0][1:]
				p.Outputs[1].TaprootBip32Derivation = []*psbt.TaprootBip32Derivation{{XOnlyPubKey: change.PubKeys[0][1:], MasterKeyFingerprint: fp, Bip32Path: changePath}}
				p.Outputs[1].TaprootInternalKey = change.PubKeys[0][1:]
			} else {
				p.Inputs[0].SighashType = txscript.SigHashAll
				p.Inputs[0].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: recv.PubKeys[0], MasterKeyFingerprint: fp, Bip32Path: recvPath}}
				p.Outputs[1].Bip32Derivation = []*psbt.Bip32Derivation{{PubKey: change.PubKeys[0], MasterKeyFingerprint: fp, Bip32Path: changePath}}
			}
			var buf bytes.Buffer
			if err := p.Serialize(&buf); err != nil {
				t.Fatal(err)
			}

			res, err := custody.SignPSBT(ctx, buf.Bytes(), true)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Complete {
				t.Fatalf("signed PSBT not complete: %+v", res)
			}
			txid, err := node.RPC().SendRawTransaction(res.Tx, false)
			if err != nil {
				t.Fatalf("btcd refused the box's transaction: %v", err)
			}
			block := node.Block(node.Generate(1)[0])
			for _, btx := range block.Transactions {
				if btx.TxHash() == *txid {
					return
				}
			}
			t.Fatalf("transaction %s not mined", txid)
		})
	}
}

func ptr[T any](v T) *T { return &v }
