package web

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/sign"
)

// statusAuditRecords is how many audit records the status page shows.
const statusAuditRecords = 20

// walletView is the Wallet card of the status page.
type walletView struct {
	Enabled        bool   // the box has a wallet feature
	CSRF           string // for the card's forms
	Err            string // the wallet's state could not be read
	State          string // hsm.StateNone, StateLocked or StateUnlocked
	Network        string
	Protection     string // seal kind
	ProtectionName string
	Fingerprint    string
	Recovery       bool // a recovery copy exists
	// BootChanged: the last unlock failed because the boot state changed; the page asks for
	// the recovery passphrase instead of the usual credentials.
	BootChanged bool
	LastError   string // the last failed unlock, when the page has nothing better to say
	Accounts    []accountView
	Audit       []auditView
	AuditErr    string
	Verify      *verifyView // the result of "Verify chain", when asked
	Pending     bool        // a wallet is being set up in this session

	// After a failed unlock or recovery.
	UnlockError   string
	RecoverErrors fieldErrors
	RecoverOpen   bool // open the recovery disclosure
}

type accountView struct {
	ID           string // element id of the descriptor, for its copy button
	Label        string
	Descriptor   string
	FirstAddress string
	Cosigner     bool // the BIP48 key: a key expression to combine, with no address
}

type auditView struct {
	Seq        uint64
	Time       string // "2006-01-02 15:04:05" in UTC
	DateTime   string // RFC 3339
	Event      string
	EventClass string
	Detail     string
}

type verifyView struct {
	OK      bool
	Records int
	Err     string
}

// newWalletView formats the wallet's state for the status page.
func newWalletView(st hsm.Status, stErr error) walletView {
	v := walletView{Enabled: true}
	if stErr != nil {
		v.Err = stErr.Error()
		return v
	}
	v.State, v.Network, v.Fingerprint, v.Recovery = st.State, st.Network, st.Fingerprint, st.Recovery
	v.Protection, v.ProtectionName = st.Protection, protectionName(st.Protection)
	if st.State == hsm.StateLocked {
		v.BootChanged = strings.Contains(st.LastError, seal.ErrBootState.Error())
		if !v.BootChanged {
			v.LastError = st.LastError
		}
	}
	for i, a := range st.Accounts {
		av := accountView{ID: fmt.Sprintf("account-%d", i), Label: a.Purpose, Descriptor: a.Descriptor,
			FirstAddress: a.FirstAddress}
		if strings.HasPrefix(a.Purpose, "BIP48") {
			av.Cosigner = true
			av.Label = "BIP48 cosigner key (wsh sortedmulti)"
		}
		v.Accounts = append(v.Accounts, av)
	}
	return v
}

func newAuditViews(recs []audit.Record) []auditView {
	out := make([]auditView, 0, len(recs))
	for i := len(recs) - 1; i >= 0; i-- { // newest first
		r := recs[i]
		out = append(out, auditView{
			Seq:        r.Seq,
			Time:       r.Time.UTC().Format(time.DateTime),
			DateTime:   r.Time.UTC().Format(time.RFC3339),
			Event:      r.Event,
			EventClass: auditClass(r.Event),
			Detail:     r.Detail,
		})
	}
	return out
}

func auditClass(event string) string {
	switch event {
	case audit.EventSign:
		return "ok"
	case audit.EventRefuse:
		return "bad"
	case audit.EventSeal:
		return "info"
	}
	return "muted"
}

// lastAudit returns the newest n records of l, oldest first. The log lists records after a
// sequence number, so the newest one is found by a binary search on "is there a record after
// k", which holds even if records are missing.
func lastAudit(l *audit.Log, n int) ([]audit.Record, error) {
	after := func(k uint64) (bool, error) {
		recs, err := l.List(k, 1)
		return len(recs) > 0, err
	}
	some, err := after(0)
	if err != nil || !some {
		return nil, err
	}
	lo, hi := uint64(0), uint64(64) // a record follows lo; find hi with none after it
	for {
		more, err := after(hi)
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		if hi > 1<<62 {
			return nil, fmt.Errorf("audit log: sequence numbers out of range")
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		more, err := after(mid)
		if err != nil {
			return nil, err
		}
		if more {
			lo = mid
		} else {
			hi = mid
		}
	}
	from := uint64(0)
	if hi > uint64(n) {
		from = hi - uint64(n)
	}
	return l.List(from, n)
}

// summaryView is sign.Summary for the review page and the API.
type summaryView struct {
	TxID         string          `json:"txid"`
	Inputs       []inputView     `json:"inputs"`
	Outputs      []outputView    `json:"outputs"`
	TotalIn      int64           `json:"total_in"`
	OurIn        int64           `json:"our_in"`
	TotalOut     int64           `json:"total_out"`
	Change       int64           `json:"change"`
	Sent         int64           `json:"sent"`
	Fee          int64           `json:"fee"`
	VSize        int64           `json:"vsize"`
	FeeRate      float64         `json:"fee_rate"`    // sat/vB
	FeePercent   float64         `json:"fee_percent"` // of Sent
	Spend        int64           `json:"spend"`
	SpentLast24h int64           `json:"spent_last_24h"`
	Violations   []violationView `json:"violations"`
}

type inputView struct {
	Index     int      `json:"index"`
	OutPoint  string   `json:"outpoint"`
	Amount    int64    `json:"amount"`
	Type      string   `json:"type"`
	Address   string   `json:"address,omitempty"`
	Ours      bool     `json:"ours"`
	Paths     []string `json:"paths,omitempty"`
	SigHash   uint32   `json:"sighash"`
	Finalized bool     `json:"finalized"`
}

type outputView struct {
	Index   int    `json:"index"`
	Amount  int64  `json:"amount"`
	Address string `json:"address,omitempty"`
	Script  string `json:"script"` // hex
	Change  bool   `json:"change"`
	Path    string `json:"path,omitempty"`
	Note    string `json:"note,omitempty"`
}

type violationView struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

func newSummaryView(s *sign.Summary) summaryView {
	v := summaryView{
		TxID: s.TxID.String(), TotalIn: s.TotalIn, OurIn: s.OurIn, TotalOut: s.TotalOut, Change: s.Change,
		Sent: s.Sent, Fee: s.Fee, VSize: s.VSize, FeeRate: s.FeeRate, FeePercent: s.FeePercent,
		Spend: s.Spend, SpentLast24h: s.SpentLast24h,
		Inputs: []inputView{}, Outputs: []outputView{}, Violations: newViolationViews(s.Violations),
	}
	for _, in := range s.Inputs {
		v.Inputs = append(v.Inputs, inputView{
			Index: in.Index, OutPoint: in.OutPoint.String(), Amount: in.Amount, Type: string(in.Type),
			Address: in.Address, Ours: in.Ours, Paths: in.Paths, SigHash: uint32(in.SigHash), Finalized: in.Finalized,
		})
	}
	for _, out := range s.Outputs {
		v.Outputs = append(v.Outputs, outputView{
			Index: out.Index, Amount: out.Amount, Address: out.Address, Script: hex.EncodeToString(out.Script),
			Change: out.Change, Path: out.Path, Note: out.Note,
		})
	}
	return v
}

func newViolationViews(vs []sign.Violation) []violationView {
	out := []violationView{}
	for _, x := range vs {
		out = append(out, violationView{Rule: string(x.Rule), Reason: x.Reason})
	}
	return out
}

// signedView is the outcome of signing, for the result page and the API.
type signedView struct {
	PSBT       string `json:"psbt"` // base64
	Complete   bool   `json:"complete"`
	Tx         string `json:"tx,omitempty"` // hex of the network transaction, when complete
	TxID       string `json:"txid"`
	Signed     []int  `json:"signed"`
	Incomplete []int  `json:"incomplete,omitempty"`
}

func newSignedView(res *sign.Result) (signedView, error) {
	b64, err := res.Base64()
	if err != nil {
		return signedView{}, fmt.Errorf("encode the signed PSBT: %w", err)
	}
	v := signedView{PSBT: b64, Complete: res.Complete, TxID: res.Packet.UnsignedTx.TxHash().String(),
		Signed: append([]int{}, res.Signed...), Incomplete: res.Incomplete}
	if res.Complete && res.Tx != nil {
		var buf bytes.Buffer
		if err := res.Tx.Serialize(&buf); err != nil {
			return signedView{}, fmt.Errorf("encode the transaction: %w", err)
		}
		v.Tx = hex.EncodeToString(buf.Bytes())
		v.TxID = res.Tx.TxHash().String()
	}
	return v, nil
}

// formatBTC formats satoshis as bitcoin with all eight decimals: "0.00050000".
func formatBTC(sats int64) string {
	sign := ""
	u := uint64(sats)
	if sats < 0 {
		sign, u = "-", uint64(-sats)
	}
	return fmt.Sprintf("%s%d.%08d", sign, u/1e8, u%1e8)
}

// formatSats formats satoshis with thousands separators: "1,250,000".
func formatSats(sats int64) string {
	s := strconv.FormatInt(sats, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
