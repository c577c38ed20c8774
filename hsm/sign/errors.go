package sign

import (
	"errors"
	"fmt"
	"strings"
)

// Errors about the PSBT as a whole.
var (
	// ErrMalformed wraps every parse failure of the PSBT bytes.
	ErrMalformed = errors.New("malformed PSBT")
	// ErrVersion2 is returned for BIP370 (version 2) PSBTs, which this signer does not take.
	ErrVersion2 = errors.New("PSBT version 2 (BIP370) is not supported: export the PSBT as version 0 (BIP174)")
	// ErrVersion is returned for any other PSBT_GLOBAL_VERSION than 0.
	ErrVersion = errors.New("unsupported PSBT version")
	// ErrFeeNegative is returned when the outputs spend more than the inputs.
	ErrFeeNegative = errors.New("the outputs spend more than the inputs")
)

// Errors about one input; they come wrapped in an [*InputError] naming the input.
var (
	// ErrMissingUTXO: the input has neither PSBT_IN_WITNESS_UTXO nor PSBT_IN_NON_WITNESS_UTXO, so
	// the amount it spends (and therefore the fee) is unknown.
	ErrMissingUTXO = errors.New("the amount spent is unknown (no WITNESS_UTXO or NON_WITNESS_UTXO): refusing, an attacker could hide the fee")
	// ErrLegacyNoPrevTx: a legacy (non-segwit) input without PSBT_IN_NON_WITNESS_UTXO. Its
	// signature does not commit to the amount, so only the full previous transaction proves it.
	ErrLegacyNoPrevTx = errors.New("legacy (non-segwit) input without NON_WITNESS_UTXO: the amount cannot be proven")
	// ErrNeedPrevTx: the policy requires the full previous transaction for segwit v0 inputs.
	ErrNeedPrevTx = errors.New("the policy requires NON_WITNESS_UTXO (the full previous transaction) for segwit v0 inputs")
	// ErrPrevTxMismatch: NON_WITNESS_UTXO is not the transaction the input spends from, or it
	// disagrees with WITNESS_UTXO.
	ErrPrevTxMismatch = errors.New("the previous transaction does not match the outpoint")
	// ErrSighash: a sighash type other than ALL (or DEFAULT for taproot) that the policy does not allow.
	ErrSighash = errors.New("sighash type not allowed")
	// ErrNotOurs: the input has no key under this wallet's master fingerprint.
	ErrNotOurs = errors.New("no key of this wallet")
	// ErrKeyMismatch: a derivation under our fingerprint does not give the key the PSBT names.
	ErrKeyMismatch = errors.New("key is not ours: the derivation path does not give this key")
	// ErrScriptMismatch: the redeem/witness script, key or taproot commitment does not match the
	// output being spent.
	ErrScriptMismatch = errors.New("script does not match the output being spent")
	// ErrUnsupported: a script type this signer does not sign.
	ErrUnsupported = errors.New("unsupported input type")
	// ErrDuplicateInput: two inputs spend the same outpoint.
	ErrDuplicateInput = errors.New("spends the same outpoint as another input")
)

// InputError is a refusal that concerns one input.
type InputError struct {
	Index int
	Err   error
}

func (e *InputError) Error() string { return fmt.Sprintf("input %d: %v", e.Index, e.Err) }

// Unwrap returns the underlying error (one of the Err* values above, possibly wrapped).
func (e *InputError) Unwrap() error { return e.Err }

func inputErr(i int, err error, format string, args ...any) error {
	if format != "" {
		err = fmt.Errorf("%w: %s", err, fmt.Sprintf(format, args...))
	}
	return &InputError{Index: i, Err: err}
}

// Rule names a policy rule.
type Rule string

// Policy rules.
const (
	RuleDailyLimit Rule = "daily-limit"
	RuleFeePercent Rule = "fee-percent"
	RuleFeeRate    Rule = "fee-rate"
)

// Violation is one broken policy rule with a sentence for the owner.
type Violation struct {
	Rule   Rule
	Reason string
}

// PolicyError is returned when the transaction breaks the owner's policy. Nothing was signed.
type PolicyError struct {
	Violations []Violation
}

func (e *PolicyError) Error() string {
	reasons := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		reasons[i] = v.Reason
	}
	return "refused by policy: " + strings.Join(reasons, "; ")
}

// Has reports whether rule r is among the violations.
func (e *PolicyError) Has(r Rule) bool {
	for _, v := range e.Violations {
		if v.Rule == r {
			return true
		}
	}
	return false
}
