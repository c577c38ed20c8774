package wallet

// This file is the contract between the wallet service (implemented in this package) and its
// users (appliance/services wires it; appliance/web shows it). Signatures here are agreed;
// fields may be added, none removed or renamed without telling the page's author.

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/anya-edge/anya/hsm/keys"
	"github.com/anya-edge/anya/node/chain"
	"github.com/anya-edge/anya/storage"
)

// Signer signs PSBTs with the box's keys: in the appliance, hsm.Custody.SignPSBT behind a
// small adapter. It returns the PSBT (binary, BIP174) with its signatures added, not
// finalized; the wallet finalizes and extracts the transaction itself.
type Signer interface {
	SignPSBT(ctx context.Context, psbt []byte) ([]byte, error)
}

// Config wires a Wallet.
type Config struct {
	DB      *storage.DB
	Network keys.Network
	// Descriptors are the wallet's output descriptors in multipath form
	// (".../<0;1>/*", receive and change), as hsm.Account.Descriptor gives them; a
	// wsh(sortedmulti(...)) descriptor makes a multisig account.
	Descriptors []string
	// GapLimit is the number of unused addresses watched past the last used one on each
	// chain (default 20).
	GapLimit int
	Signer   Signer
	// FeeModel, when set, is a learned fee estimator (ml/) consulted before the backend;
	// it may fail with chain.ErrFeeUnavailable when it lacks features.
	FeeModel func(ctx context.Context, target uint32) (chain.FeeRate, error)
	Log      *slog.Logger
	Now      func() time.Time

	// Birthday is the height of the first block scanned when the wallet has no tip yet
	// (a new wallet, or one restored from its descriptors): 0 scans from the genesis block,
	// which is what a restored wallet needs and costs little on regtest; a fresh wallet
	// can start at the backend's current height.
	Birthday int32
	// BirthdayTime, when Birthday is 0, is when the wallet was created (hsm's
	// Status.Birthday for a mnemonic the box made): the scan starts at the first block
	// stamped a day before it (block times may run hours behind real time), found by a
	// binary search over the backend's headers.
	BirthdayTime time.Time
	// RetryDelay is the pause before following the backend again after it failed
	// (default 2 s); StatusInterval how often its status is refreshed while no block
	// arrives (default 5 s).
	RetryDelay     time.Duration
	StatusInterval time.Duration
	// ProposalTTL is how long a proposal stays valid for Send (default 10 min).
	ProposalTTL time.Duration
}

// Errors the page tells apart (wrapped, with details in the message).
var (
	ErrNoBackend        = errors.New("wallet: no chain backend is configured")
	ErrNotSynced        = errors.New("wallet: not yet in sync with the chain")
	ErrInvalidAddress   = errors.New("wallet: invalid address")
	ErrWrongNetwork     = errors.New("wallet: address is for another network")
	ErrAmountBelowDust  = errors.New("wallet: amount is below the dust limit")
	ErrFeeRateTooLow    = errors.New("wallet: fee rate is below the minimum relay fee")
	ErrTxNotFound       = errors.New("wallet: no such wallet transaction")
	ErrNotReplaceable   = errors.New("wallet: transaction cannot be replaced")
	ErrAlreadyConfirmed = errors.New("wallet: transaction is already confirmed")
	ErrLockTimeNotYet   = errors.New("wallet: the transaction's timelock has not passed yet")
	ErrProposalExpired  = errors.New("wallet: proposal expired or unknown; review it again")
	// ErrInsufficientFunds: the spendable coins do not cover the payments and the fee.
	ErrInsufficientFunds = errors.New("wallet: insufficient funds")
	// ErrNeedsSignatures: a multisig transaction that the box signed still needs
	// cosigners' signatures; SignOnly gives the partially signed PSBT, Broadcast sends the
	// completed one.
	ErrNeedsSignatures = errors.New("wallet: the transaction needs more signatures")
	// ErrCoinNotSpendable: a coin named in SendRequest.Coins is not a spendable coin of
	// the wallet.
	ErrCoinNotSpendable = errors.New("wallet: coin is not spendable by the wallet")
)

// SyncState says where the wallet stands with its backend.
type SyncState string

const (
	SyncNoBackend SyncState = "no-backend" // nothing configured yet
	SyncStarting  SyncState = "starting"
	SyncSyncing   SyncState = "syncing" // backend or wallet catching up
	SyncSynced    SyncState = "synced"
	SyncDown      SyncState = "down" // backend unreachable or refusing; Err says why
)

// SyncStatus is what the dashboard shows about the chain and the wallet's progress.
type SyncStatus struct {
	State   SyncState    `json:"state"`
	Backend string       `json:"backend"` // e.g. "btcd 0.26.2 (rpc)" or "light client (p2p)"
	Chain   chain.Status `json:"chain"`   // the backend's view (tip, headers, peers, progress)
	// Wallet is the last block the wallet applied; Progress its share of the backend's tip.
	Wallet   Tip     `json:"wallet"`
	Progress float64 `json:"progress"`
	Err      string  `json:"error,omitempty"`
	// Since is when State last changed.
	Since time.Time `json:"since"`
}

// Address is a receive address handed to the owner.
type Address struct {
	Address string    `json:"address"`
	Path    keys.Path `json:"path"`
	Index   uint32    `json:"index"`
	// URI is the BIP21 URI (bitcoin:ADDRESS?amount=...&label=...).
	URI string `json:"uri"`
}

// Payment is one output of a send.
type Payment struct {
	Address string `json:"address"`
	Amount  int64  `json:"amount"` // satoshis; ignored with SendRequest.SendAll
}

// SendRequest is what the send form asks for.
type SendRequest struct {
	Payments []Payment `json:"payments"`
	// FeeRate in sat/kvB; 0 means the wallet's suggestion for Target blocks.
	FeeRate chain.FeeRate `json:"fee_rate"`
	Target  uint32        `json:"target"` // default 6
	// SendAll sends every spendable coin to the single payment, without change.
	SendAll bool `json:"send_all"`
	// LockTime, when set, is an absolute timelock (a block height below 500,000,000 or a
	// Unix time above): the transaction is not valid before it.
	LockTime uint32 `json:"lock_time,omitempty"`
	// RelativeLock, when set, is a BIP68 relative timelock in blocks on every input: the
	// transaction is not valid until each coin it spends has that many confirmations.
	RelativeLock uint16 `json:"relative_lock,omitempty"`
	// Coins restricts the inputs to these outpoints (txid:index) when set.
	Coins []string `json:"coins,omitempty"`
}

// ProposalOutput is one output of a proposal, as the review screen shows it.
type ProposalOutput struct {
	Address string `json:"address"`
	Amount  int64  `json:"amount"`
	Change  bool   `json:"change"`
}

// ProposalInput is one coin a proposal spends.
type ProposalInput struct {
	OutPoint string `json:"outpoint"`
	Amount   int64  `json:"amount"`
	Address  string `json:"address"`
}

// Proposal is an unsigned transaction for the owner to review: the send screen's "review"
// step, a fee bump or a CPFP child. Confirm it with Wallet.Send(ctx, p.ID).
type Proposal struct {
	ID       string           `json:"id"`   // handle for Send; valid for a few minutes
	Kind     string           `json:"kind"` // "send", "bump" or "cpfp"
	PSBT     []byte           `json:"-"`    // unsigned, BIP174, with derivations for the signer
	Inputs   []ProposalInput  `json:"inputs"`
	Outputs  []ProposalOutput `json:"outputs"`
	Fee      int64            `json:"fee"`
	VSize    int64            `json:"vsize"`
	FeeRate  chain.FeeRate    `json:"fee_rate"`
	Sent     int64            `json:"sent"`   // sum of the non-change outputs
	Change   int64            `json:"change"` // sum of the change outputs
	LockTime uint32           `json:"lock_time,omitempty"`
	// Replaces is the txid a bump replaces; Parent the txid a CPFP child pays for, and
	// PackageFeeRate the fee rate of parent and child together.
	Replaces       string        `json:"replaces,omitempty"`
	Parent         string        `json:"parent,omitempty"`
	PackageFeeRate chain.FeeRate `json:"package_fee_rate,omitempty"`
	Algorithm      string        `json:"algorithm,omitempty"` // coin selection used
	Expires        time.Time     `json:"expires"`
}

// FeeEstimate is a suggested fee rate and where it comes from.
type FeeEstimate struct {
	Target uint32        `json:"target"`
	Rate   chain.FeeRate `json:"rate"`
	Source string        `json:"source"` // "backend", "mempool", "model", "minimum"
	// Others lists the other sources' answers for the page to show side by side.
	Others []FeeEstimate `json:"others,omitempty"`
}

// HistoryEntry is a wallet transaction for the history page.
type HistoryEntry struct {
	Entry
	Confirmations int32         `json:"confirmations"`
	Fee           int64         `json:"fee,omitempty"` // known when all inputs are ours
	FeeRate       chain.FeeRate `json:"fee_rate,omitempty"`
	// Replaceable: unconfirmed, signals RBF and spends only our coins: "bump fee" applies.
	Replaceable bool `json:"replaceable"`
	// CPFPable: unconfirmed with an unspent output of ours a child can spend.
	CPFPable bool `json:"cpfpable"`
	// ReplacedBy is set when a replacement of this transaction was seen.
	ReplacedBy string `json:"replaced_by,omitempty"`
}

// The Wallet's methods (implemented in wallet.go):
//
//	func Open(cfg Config) (*Wallet, error)
//	func (w *Wallet) SetBackend(b chain.Backend)       // nil detaches; replaces and resyncs as needed
//	func (w *Wallet) Run(ctx context.Context) error     // follows the backend until ctx ends
//	func (w *Wallet) Sync() SyncStatus
//	func (w *Wallet) Peers() []chain.Peer               // empty unless the backend implements chain.PeerReporter
//	func (w *Wallet) Balance() (Balance, error)
//	func (w *Wallet) NewAddress() (Address, error)      // next unused receive address
//	func (w *Wallet) History() ([]HistoryEntry, error)  // newest first
//	func (w *Wallet) Coins() ([]Output, error)          // unspent outputs
//	func (w *Wallet) EstimateFee(ctx context.Context, target uint32) (FeeEstimate, error)
//	func (w *Wallet) Propose(ctx context.Context, req SendRequest) (*Proposal, error)
//	func (w *Wallet) ProposeBump(ctx context.Context, txid chainhash.Hash, rate chain.FeeRate) (*Proposal, error)
//	func (w *Wallet) ProposeCPFP(ctx context.Context, txid chainhash.Hash, packageRate chain.FeeRate) (*Proposal, error)
//	func (w *Wallet) Send(ctx context.Context, proposalID string) (chainhash.Hash, error) // sign, finalize, broadcast, record
//	func (w *Wallet) Close() error
//
// Added for multisig (threshold > 1), where Send fails with ErrNeedsSignatures:
//
//	func (w *Wallet) SignOnly(ctx context.Context, proposalID string) ([]byte, error) // the box's signatures only, not finalized
//	func (w *Wallet) Broadcast(ctx context.Context, psbt []byte) (chainhash.Hash, error) // a fully signed PSBT (binary or base64)
