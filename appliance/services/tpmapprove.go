package services

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/slot"
	"github.com/anya-edge/anya/hsm"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/tpm"
)

// bootApprover approves, before the agent switches to a newly installed slot, the boot state
// that slot will measure, for the wallet's TPM-sealed copy (hsm.Custody.ApproveBoot): so a
// wallet the TPM unlocks by itself still does so after the update.
//
// The prediction (hsm/tpm Predict) replays the firmware's TCG event log of the running boot
// with what changes substituted: the kernel's Authenticode digest in PCR 4 (the firmware
// measures the image systemd-boot starts), the command line systemd-boot measures into PCR 12
// (anya.slot and initrd=\anya\<slot>\… renamed), the initramfs the kernel's EFI stub measures
// into PCR 9; PCR 0, 2 and 7 (firmware, option ROMs, Secure Boot) and 11 (no UKI: unused) do
// not change. A PCR whose log does not replay to its current value, or that holds a
// measurement naming the slot that cannot be redone, is unpredictable: then nothing is
// approved and the install stops before the switch with the reason (ErrBootUnpredictable),
// and the box keeps running the version whose boot state the TPM accepts. Approving fewer PCRs
// is not possible for an existing blob (its PolicyPCR selection is fixed), and re-sealing
// under a narrower selection would weaken the binding for every later boot.
type bootApprover struct {
	custody  *hsm.Custody
	tpm      *tpm.Sealer // nil: the box has no TPM
	from     string      // the running slot
	espDir   string      // where the agent mounts the ESP during an install
	eventLog string
	log      *slog.Logger
}

// approve is the agent's BeforeSwitch.
func (a *bootApprover) approve(ctx context.Context, sw agent.Switch) error {
	st, err := a.custody.Status()
	if err != nil {
		return fmt.Errorf("read the wallet: %w", err)
	}
	if st.Protection != seal.KindTPM {
		return nil
	}
	if a.tpm == nil {
		return fmt.Errorf("the wallet is protected by the TPM, which this boot cannot open: %w", seal.ErrDeviceMissing)
	}
	p, err := a.predict(ctx, sw)
	if err != nil {
		return fmt.Errorf("predict the boot state of slot %s for the TPM: %w", sw.Slot, err)
	}
	for _, c := range p.Changed {
		a.log.Info("TPM: the new slot changes a measurement", "what", c)
	}
	for _, c := range p.Kept {
		a.log.Info("TPM: the new slot keeps a measurement", "what", c)
	}
	for pcr, why := range p.Unpredictable {
		a.log.Warn("TPM: a PCR of the new slot cannot be predicted", "pcr", pcr, "why", why)
	}
	ok, err := a.custody.ApproveBoot(ctx, p, "update "+sw.Version+" (slot "+sw.Slot+")")
	if err != nil {
		return fmt.Errorf("the TPM-protected wallet would not unlock after the update: %w", err)
	}
	if ok {
		a.log.Info("TPM approved the boot state of the new slot", "slot", sw.Slot, "version", sw.Version)
	}
	return nil
}

func (a *bootApprover) predict(ctx context.Context, sw agent.Switch) (tpm.Prediction, error) {
	raw, err := readEventLog(a.eventLog)
	if err != nil {
		return tpm.Prediction{}, err
	}
	events, err := tpm.ParseEventLog(raw)
	if err != nil {
		return tpm.Prediction{}, err
	}
	current, err := a.tpm.PCRs(ctx)
	if err != nil {
		return tpm.Prediction{}, err
	}
	file := func(s, name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(a.espDir, "anya", s, name))
		if err != nil {
			return nil, fmt.Errorf("read the boot files from the ESP: %w", err)
		}
		return b, nil
	}
	ch := tpm.BootChange{FromSlot: a.from, ToSlot: sw.Slot, NewInitrd: sw.InitrdSHA256}
	if ch.OldKernel, err = file(a.from, "vmlinuz"); err != nil {
		return tpm.Prediction{}, err
	}
	if ch.NewKernel, err = file(sw.Slot, "vmlinuz"); err != nil {
		return tpm.Prediction{}, err
	}
	if h := sha256.Sum256(ch.NewKernel); !bytes.Equal(h[:], sw.KernelSHA256[:]) {
		return tpm.Prediction{}, errors.New("the new slot's kernel on the ESP is not the verified one")
	}
	oldInitrd, err := file(a.from, "initrd.img")
	if err != nil {
		return tpm.Prediction{}, err
	}
	ch.OldInitrd = sha256.Sum256(oldInitrd)
	return tpm.Predict(events, current, ch), nil
}

// readEventLog reads the firmware's event log, mounting securityfs when it is not.
func readEventLog(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && path == tpm.DefaultEventLog {
		if merr := unix.Mount("securityfs", "/sys/kernel/security", "securityfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); merr != nil && !errors.Is(merr, unix.EBUSY) {
			return nil, fmt.Errorf("mount securityfs for the TPM event log: %w", merr)
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read the TPM event log: %w", err)
	}
	return b, nil
}

// newBootApprover returns the approver of this run; custody nil means none.
func newBootApprover(custody *hsm.Custody, sealers map[string]seal.Sealer, from string, log *slog.Logger) *bootApprover {
	if custody == nil {
		return nil
	}
	ts, _ := sealers[seal.KindTPM].(*tpm.Sealer)
	return &bootApprover{custody: custody, tpm: ts, from: from, espDir: slot.MountDir, eventLog: tpm.DefaultEventLog, log: log}
}
