package wallet

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/anya-edge/anya/node/chain"
)

// Send signs a proposal with Config.Signer, finalizes and checks the transaction,
// broadcasts it through the backend and records it, so that the balance and the history
// show it at once. A transaction whose timelock has not passed fails with
// ErrLockTimeNotYet (with the node's reason); a multisig transaction that still needs
// cosigners fails with ErrNeedsSignatures (see SignOnly and Broadcast). The proposal stays
// valid until it is sent.
func (w *Wallet) Send(ctx context.Context, proposalID string) (chainhash.Hash, error) {
	txid, err := w.send(ctx, proposalID)
	if err != nil {
		return txid, fmt.Errorf("send: %w", err)
	}
	return txid, nil
}

func (w *Wallet) send(ctx context.Context, id string) (chainhash.Hash, error) {
	p, err := w.proposal(id)
	if err != nil {
		return chainhash.Hash{}, err
	}
	if w.currentBackend() == nil {
		return chainhash.Hash{}, ErrNoBackend
	}
	signed, err := w.sign(ctx, p)
	if err != nil {
		return chainhash.Hash{}, err
	}
	packet, err := parsePSBT(signed)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("signer's psbt: %w", err)
	}
	if err := finalize(packet); err != nil {
		if th := w.keys.primary().threshold(); th > 1 {
			w.mu.Lock()
			p.signed = signed
			w.mu.Unlock()
			return chainhash.Hash{}, fmt.Errorf("%w: %d of %d keys must sign and the box added its signature; "+
				"export the partially signed PSBT (SignOnly), have the cosigners sign it and broadcast the result: %v",
				ErrNeedsSignatures, th, len(w.keys.primary().desc.Keys), err)
		}
		return chainhash.Hash{}, fmt.Errorf("the signer did not sign every input: %w", err)
	}
	txid, err := w.broadcast(ctx, packet)
	if err != nil {
		return txid, err
	}
	w.forget(id)
	return txid, nil
}

// SignOnly has the box sign a proposal and returns the PSBT (binary, BIP174) with its
// signatures, not finalized: for a multisig whose cosigners sign elsewhere.
func (w *Wallet) SignOnly(ctx context.Context, proposalID string) ([]byte, error) {
	p, err := w.proposal(proposalID)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	signed, err := w.sign(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	w.mu.Lock()
	p.signed = signed
	w.mu.Unlock()
	return append([]byte(nil), signed...), nil
}

// sign returns the box's signed PSBT of a proposal.
func (w *Wallet) sign(ctx context.Context, p *proposal) ([]byte, error) {
	w.mu.Lock()
	signed := p.signed
	w.mu.Unlock()
	if signed != nil {
		return signed, nil
	}
	if w.cfg.Signer == nil {
		return nil, errors.New("no signer is configured")
	}
	var buf bytes.Buffer
	if err := p.packet.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("serialize psbt: %w", err)
	}
	signed, err := w.cfg.Signer.SignPSBT(ctx, buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return signed, nil
}

// Broadcast finalizes a fully signed PSBT (binary or base64), for example a multisig
// proposal completed by the cosigners, checks, broadcasts and records its transaction.
func (w *Wallet) Broadcast(ctx context.Context, signed []byte) (chainhash.Hash, error) {
	packet, err := parsePSBT(signed)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("broadcast: %w", err)
	}
	if w.currentBackend() == nil {
		return chainhash.Hash{}, fmt.Errorf("broadcast: %w", ErrNoBackend)
	}
	if err := finalize(packet); err != nil {
		return chainhash.Hash{}, fmt.Errorf("broadcast: %w: %v", ErrNeedsSignatures, err)
	}
	txid, err := w.broadcast(ctx, packet)
	if err != nil {
		return txid, fmt.Errorf("broadcast: %w", err)
	}
	// A proposal of the same transaction is done.
	unsigned := packet.UnsignedTx.TxHash()
	w.mu.Lock()
	for id, p := range w.proposals {
		if p.packet.UnsignedTx.TxHash() == unsigned {
			delete(w.proposals, id)
		}
	}
	w.mu.Unlock()
	return txid, nil
}

// parsePSBT reads a binary or base64 PSBT.
func parsePSBT(data []byte) (p *psbt.Packet, err error) {
	if !bytes.HasPrefix(data, []byte("psbt\xff")) {
		dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil {
			return nil, errors.New("psbt: neither binary nor base64")
		}
		data = dec
	}
	defer func() { // btcd's parser can panic on malformed input
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("psbt: malformed: %v", r)
		}
	}()
	p, err = psbt.NewFromRawBytes(bytes.NewReader(data), false)
	if err != nil {
		return nil, fmt.Errorf("psbt: %w", err)
	}
	return p, nil
}

// finalize finalizes every input; it fails when one lacks signatures.
func finalize(p *psbt.Packet) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("finalize: %v", r)
		}
	}()
	for i := range p.UnsignedTx.TxIn {
		ok, err := psbt.MaybeFinalize(p, i)
		if err != nil {
			return fmt.Errorf("input %d: %w", i, err)
		}
		if !ok {
			return fmt.Errorf("input %d cannot be finalized", i)
		}
	}
	return nil
}

// broadcast extracts the finalized transaction, verifies every input with the script
// engine, hands it to the backend and records it.
func (w *Wallet) broadcast(ctx context.Context, p *psbt.Packet) (chainhash.Hash, error) {
	tx, err := psbt.Extract(p)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("extract: %w", err)
	}
	if err := verify(p, tx); err != nil {
		return chainhash.Hash{}, err
	}
	b := w.currentBackend()
	if b == nil {
		return chainhash.Hash{}, ErrNoBackend
	}
	txid, err := b.Broadcast(ctx, tx)
	if err != nil {
		var rej *chain.RejectError
		if errors.As(err, &rej) && lockTimeReason(rej.Reason) {
			return tx.TxHash(), fmt.Errorf("%w (lock time %d, the node says: %s)", ErrLockTimeNotYet, tx.LockTime, rej.Reason)
		}
		return tx.TxHash(), fmt.Errorf("broadcast %v: %w", tx.TxHash(), err)
	}
	if _, err := w.recordTx(tx); err != nil {
		return txid, fmt.Errorf("record %v: %w", txid, err)
	}
	w.log.Info("broadcast", "txid", txid, "vsize", txVSize(tx))
	return txid, nil
}

// lockTimeReason tells a refusal for a timelock not yet passed: btcd's "not finalized" and
// "sequence locks on inputs not met", bitcoind's "non-final" and "non-BIP68-final".
func lockTimeReason(reason string) bool {
	r := strings.ToLower(reason)
	for _, s := range []string{"not finalized", "non-final", "sequence lock", "non-bip68-final"} {
		if strings.Contains(r, s) {
			return true
		}
	}
	return false
}

// verify runs the script engine on every input of tx, with the UTXOs the PSBT gives.
func verify(p *psbt.Packet, tx *wire.MsgTx) error {
	prevs := txscript.NewMultiPrevOutFetcher(nil)
	utxos := make([]*wire.TxOut, len(tx.TxIn))
	for i, in := range tx.TxIn {
		pin := p.Inputs[i]
		switch {
		case pin.WitnessUtxo != nil:
			utxos[i] = pin.WitnessUtxo
		case pin.NonWitnessUtxo != nil && int(in.PreviousOutPoint.Index) < len(pin.NonWitnessUtxo.TxOut):
			utxos[i] = pin.NonWitnessUtxo.TxOut[in.PreviousOutPoint.Index]
		default:
			return fmt.Errorf("verify: input %d has no UTXO in the PSBT", i)
		}
		prevs.AddPrevOut(in.PreviousOutPoint, utxos[i])
	}
	hashes := txscript.NewTxSigHashes(tx, prevs)
	for i := range tx.TxIn {
		vm, err := txscript.NewEngine(utxos[i].PkScript, tx, i, txscript.StandardVerifyFlags, nil, hashes, utxos[i].Value, prevs)
		if err != nil {
			return fmt.Errorf("verify input %d: %w", i, err)
		}
		if err := vm.Execute(); err != nil {
			return fmt.Errorf("verify input %d: %w", i, err)
		}
	}
	return nil
}
