package web

import (
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"time"

	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/node/wallet"
)

// dashboardTargets are the confirmation targets whose fee estimates the dashboard shows.
var dashboardTargets = []uint32{1, 6, 144}

// syncView is the sync card of the dashboard.
type syncView struct {
	State   string // wallet.SyncState
	Label   string // "In sync", "Syncing", ...
	Class   string // badge class: ok, info, warn, bad, muted
	Backend string
	// Heights; ChainKnown is false while the backend has not told its tip.
	WalletHeight int32
	ChainHeight  int32
	Headers      int32
	ChainKnown   bool
	Peers        int
	PeerHeight   int32
	Progress     float64 // 0 to 1
	Percent      string  // "99.5"
	Reason       string  // why the backend counts as syncing
	Err          string
	Since        string // "for 3 minutes"
}

func newSyncView(st wallet.SyncStatus, now time.Time) syncView {
	v := syncView{State: string(st.State), Backend: st.Backend, WalletHeight: st.Wallet.Height,
		ChainHeight: st.Chain.Best.Height, Headers: st.Chain.Headers, Peers: st.Chain.Peers,
		PeerHeight: st.Chain.PeerHeight, Reason: st.Chain.Reason, Err: st.Err}
	v.ChainKnown = st.Chain.Best.Height > 0 || st.Chain.Headers > 0
	v.Progress = min(max(st.Progress, 0), 1)
	v.Percent = strconv.FormatFloat(v.Progress*100, 'f', 1, 64)
	switch st.State {
	case wallet.SyncSynced:
		v.Label, v.Class = "In sync", "ok"
	case wallet.SyncSyncing:
		v.Label, v.Class = "Syncing", "info"
	case wallet.SyncStarting:
		v.Label, v.Class = "Starting", "info"
	case wallet.SyncDown:
		v.Label, v.Class = "Backend down", "bad"
	case wallet.SyncNoBackend, "":
		v.Label, v.Class = "No backend", "muted"
	default:
		v.Label, v.Class = string(st.State), "warn"
	}
	if !st.Since.IsZero() {
		v.Since = "for " + humanDuration(now.Sub(st.Since))
	}
	return v
}

type peerView struct {
	Addr    string
	Agent   string
	Height  int32
	Inbound bool
	Score   int
}

func newPeerViews(peers []chain.Peer) []peerView {
	out := make([]peerView, 0, len(peers))
	for _, p := range peers {
		out = append(out, peerView{Addr: p.Addr, Agent: p.Agent, Height: p.Height, Inbound: p.Inbound, Score: p.Score})
	}
	return out
}

// feeTable shows the fee estimates of several targets with each source's answer side by
// side.
type feeTable struct {
	Sources []string // the columns, after "suggested"
	Rows    []feeRow
}

type feeRow struct {
	Target uint32 // blocks
	Cells  []feeCell
}

type feeCell struct {
	Rate   string // sat/vB; "" when the source gave nothing
	Chosen bool   // the suggestion
}

func newFeeTable(targets []uint32, ests map[uint32]wallet.FeeEstimate) feeTable {
	var t feeTable
	for _, tg := range targets {
		est, ok := ests[tg]
		if !ok {
			continue
		}
		for _, e := range append([]wallet.FeeEstimate{est}, est.Others...) {
			if e.Source != "" && !slices.Contains(t.Sources, e.Source) {
				t.Sources = append(t.Sources, e.Source)
			}
		}
	}
	for _, tg := range targets {
		row := feeRow{Target: tg}
		est, ok := ests[tg]
		for _, src := range t.Sources {
			c := feeCell{}
			if ok {
				for _, e := range append([]wallet.FeeEstimate{est}, est.Others...) {
					if e.Source == src && e.Rate > 0 {
						c.Rate, c.Chosen = formatRate(e.Rate), src == est.Source
						break
					}
				}
			}
			row.Cells = append(row.Cells, c)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// txView is one entry of the history.
type txView struct {
	TxID          string
	ElemID        string // "tx-<txid>", the anchor of the entry
	Time          string // "2006-01-02 15:04" UTC
	DateTime      string // RFC 3339
	Amount        string // "+0.00100000" or "−0.00050000", BTC
	Incoming      bool
	Confirmations string
	Confirmed     bool
	Fee           string // "" when unknown
	Replaceable   bool
	CPFPable      bool
	ReplacedBy    string
}

func newTxViews(entries []wallet.HistoryEntry) []txView {
	out := make([]txView, 0, len(entries))
	for _, e := range entries {
		net := e.Net()
		v := txView{TxID: e.TxID, ElemID: "tx-" + e.TxID, Incoming: net >= 0,
			Replaceable: e.Replaceable && e.ReplacedBy == "", CPFPable: e.CPFPable && e.ReplacedBy == "",
			ReplacedBy: e.ReplacedBy, Confirmed: e.Confirmations > 0}
		if net >= 0 {
			v.Amount = "+" + formatBTC(net)
		} else {
			v.Amount = "−" + formatBTC(-net)
		}
		if !e.FirstSeen.IsZero() {
			v.Time = e.FirstSeen.UTC().Format("2006-01-02 15:04")
			v.DateTime = e.FirstSeen.UTC().Format(time.RFC3339)
		}
		switch {
		case e.ReplacedBy != "":
			v.Confirmations = "replaced"
		case e.Confirmations <= 0:
			v.Confirmations = "unconfirmed"
		case e.Confirmations == 1:
			v.Confirmations = "1 confirmation"
		default:
			v.Confirmations = formatSats(int64(e.Confirmations)) + " confirmations"
		}
		if e.Fee > 0 {
			v.Fee = formatSats(e.Fee) + " sat"
			if e.FeeRate > 0 {
				v.Fee += " · " + formatRate(e.FeeRate) + " sat/vB"
			}
		}
		out = append(out, v)
	}
	return out
}

// proposalView is the review screen of a proposal.
type proposalView struct {
	ID       string
	Kind     string // send, bump, cpfp
	Heading  string
	Outputs  []proposalOutputView
	Inputs   []proposalInputView
	Fee      string // sat
	FeeRate  string // sat/vB
	VSize    int64
	Sent     string // BTC
	Change   string // BTC
	Leaving  string // BTC: what leaves the wallet, sent + fee
	LockTime string // "" when none
	LockNote string
	Replaces string
	Parent   string
	Package  string // package fee rate of a CPFP, sat/vB
	Expires  string // "in 4 minutes"
}

type proposalOutputView struct {
	Address string
	Amount  string
	Change  bool
}

type proposalInputView struct {
	OutPoint string
	Address  string
	Amount   string
}

func newProposalView(p *wallet.Proposal, tip int32, now time.Time) proposalView {
	v := proposalView{ID: p.ID, Kind: p.Kind, Fee: formatSats(p.Fee), FeeRate: formatRate(p.FeeRate), VSize: p.VSize,
		Sent: formatBTC(p.Sent), Change: formatBTC(p.Change), Leaving: formatBTC(p.Sent + p.Fee),
		Replaces: p.Replaces, Parent: p.Parent}
	v.LockTime, v.LockNote = lockTimeText(p.LockTime, tip, now)
	switch p.Kind {
	case "bump":
		v.Heading = "Review the fee bump"
	case "cpfp":
		v.Heading = "Review the child transaction"
		if p.PackageFeeRate > 0 {
			v.Package = formatRate(p.PackageFeeRate)
		}
	default:
		v.Heading = "Review the payment"
	}
	for _, o := range p.Outputs {
		v.Outputs = append(v.Outputs, proposalOutputView{Address: o.Address, Amount: formatBTC(o.Amount), Change: o.Change})
	}
	for _, in := range p.Inputs {
		v.Inputs = append(v.Inputs, proposalInputView{OutPoint: in.OutPoint, Address: in.Address, Amount: formatBTC(in.Amount)})
	}
	if !p.Expires.IsZero() {
		if d := p.Expires.Sub(now); d > 0 {
			v.Expires = "in " + humanDuration(d)
		} else {
			v.Expires = "now"
		}
	}
	return v
}

// lockTimeBlocks is the bound below which a locktime is a block height.
const lockTimeBlocks = 500_000_000

// lockTimeText describes an absolute locktime ("" for none) and adds a note, knowing the
// chain is at block tip at time now. A locktime already reached is what wallets set against
// fee sniping.
func lockTimeText(lt uint32, tip int32, now time.Time) (text, note string) {
	switch {
	case lt == 0:
		return "", ""
	case lt < lockTimeBlocks && int64(lt) <= int64(tip)+1:
		return "Block " + formatSats(int64(lt)), "reached: the usual guard against fee sniping"
	case lt < lockTimeBlocks:
		return "Not before block " + formatSats(int64(lt)), "the chain is at block " + formatSats(int64(tip))
	}
	at := time.Unix(int64(lt), 0).UTC()
	if !at.After(now) {
		return at.Format("2006-01-02 15:04") + " UTC", "passed"
	}
	return "Not before " + at.Format("2006-01-02 15:04") + " UTC", ""
}

// receiveView is the receive card: an address, its URI and QR code.
type receiveView struct {
	Address string
	Path    string
	URI     string
	QR      template.HTML
	Version int // of the QR code, for tests
}

func newReceiveView(a wallet.Address, amount int64, label string) (receiveView, error) {
	v := receiveView{Address: a.Address, URI: wallet.BIP21(a.Address, amount, label)}
	if len(a.Path) > 0 {
		v.Path = a.Path.String()
	}
	code, err := newQR(v.URI)
	if err != nil {
		return v, err
	}
	v.QR, v.Version = code.svg("QR code of "+v.URI), code.version()
	return v, nil
}

// targetView is one choice of confirmation target on the send form.
type targetView struct {
	Blocks  uint32
	Label   string
	Rate    string // suggested sat/vB, "" when unknown
	Source  string
	Checked bool
}

func newTargetViews(ests map[uint32]wallet.FeeEstimate, chosen uint32) []targetView {
	var out []targetView
	for _, t := range feeTargets {
		tv := targetView{Blocks: t.Blocks, Label: t.Label, Checked: t.Blocks == chosen}
		if est, ok := ests[t.Blocks]; ok && est.Rate > 0 {
			tv.Rate, tv.Source = formatRate(est.Rate), est.Source
		}
		out = append(out, tv)
	}
	return out
}

// balanceView is the wallet's balance.
type balanceView struct {
	Confirmed   string
	Unconfirmed string
	HasPending  bool
	Total       string
}

func newBalanceView(b wallet.Balance) balanceView {
	return balanceView{Confirmed: formatBTC(b.Confirmed), Unconfirmed: formatBTC(b.Unconfirmed),
		HasPending: b.Unconfirmed != 0, Total: formatBTC(b.Confirmed + b.Unconfirmed)}
}

// backendSummary describes saved settings in a line.
func backendSummary(bs BackendSettings) string {
	switch bs.Kind {
	case BackendRPC:
		s := "Your own node at " + bs.Host
		if bs.NoTLS {
			s += " (plain HTTP)"
		}
		return s
	case BackendP2P:
		if len(bs.Peers) == 0 {
			return "Built-in light client, peers from the DNS seeds"
		}
		return fmt.Sprintf("Built-in light client, %s", plural(int64(len(bs.Peers)), "peer"))
	}
	return "Not chosen yet"
}
