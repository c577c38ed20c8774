package hsm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/anya-edge/anya/hsm/audit"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/tpm"
)

// ErrBootUnpredictable: the boot state an update will produce is not fully known, so the TPM
// cannot approve it in advance.
var ErrBootUnpredictable = errors.New("the next boot state cannot be predicted")

// BootApprover is a seal provider whose blobs are bound to the boot state and that can approve
// a future boot state for a blob while the current one is approved (hsm/tpm.Sealer).
type BootApprover interface {
	Authorize(ctx context.Context, blob seal.Blob, next tpm.PCRValues) (seal.Blob, error)
}

// ApproveBoot approves, for the wallet's TPM-sealed copy, the boot state p predicts for the
// slot the box is about to switch to, so that the updated box still unseals the wallet by
// itself. The approval of the running boot state is kept (a fallback still unseals); older
// ones are dropped (see hsm/tpm Authorize). It needs neither the seed nor the PIN.
//
// It returns false, and does nothing, when there is no wallet or it is not protected by the
// TPM. It refuses with ErrBootUnpredictable, changing nothing, when the prediction lacks a
// PCR the blob is bound to: approving a partial state is impossible (a PolicyPCR digest covers
// every bound PCR), and narrowing the binding would weaken it. The update agent then stops the
// install before the switch, so the box keeps running a boot state the TPM accepts.
func (c *Custody) ApproveBoot(ctx context.Context, p tpm.Prediction, what string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, ok, err := c.record()
	if err != nil {
		return false, fmt.Errorf("approve boot: %w", err)
	}
	if !ok || rec.Protection != seal.KindTPM {
		return false, nil
	}
	s, ok := c.cfg.Sealers[seal.KindTPM].(BootApprover)
	if !ok {
		return false, fmt.Errorf("approve boot: %w: the wallet is protected by the TPM", seal.ErrDeviceMissing)
	}
	bound, err := tpm.BlobPCRs(rec.Sealed)
	if err != nil {
		return false, fmt.Errorf("approve boot: %w", err)
	}
	if missing := p.Missing(bound); len(missing) > 0 {
		var why []string
		for _, i := range missing {
			r := p.Unpredictable[i]
			if r == "" {
				r = "no value"
			}
			why = append(why, fmt.Sprintf("PCR %d: %s", i, r))
		}
		err := fmt.Errorf("approve boot: %w (%s)", ErrBootUnpredictable, strings.Join(why, "; "))
		c.appendAudit(audit.EventSeal, fmt.Sprintf("boot state of %s not approved: %v", what, err))
		return false, err
	}
	blob, err := s.Authorize(ctx, rec.Sealed, p.Values)
	if err != nil {
		c.appendAudit(audit.EventSeal, fmt.Sprintf("boot state of %s not approved: %v", what, err))
		return false, fmt.Errorf("approve boot: %w", err)
	}
	rec.Sealed, rec.Changed = blob, c.now().UTC()
	if err := c.wallet.Put("current", rec); err != nil {
		return false, fmt.Errorf("approve boot: store: %w", err)
	}
	c.appendAudit(audit.EventSeal, "approved the boot state of "+what+" for the TPM")
	return true, nil
}
