package services

import (
	"errors"
	"log/slog"
	"os"

	"github.com/anya-edge/anya/hsm/piv"
	"github.com/anya-edge/anya/hsm/seal"
	"github.com/anya-edge/anya/hsm/tpm"
	"github.com/go-piv/piv-go/v2/pcsclite"
)

// detectSealers returns the seal providers this box has: the passphrase always, the TPM when
// /dev/tpmrm0 exists, a YubiKey (PIV) when pcscd's socket exists. close releases them.
func detectSealers(log *slog.Logger, tpmPath string) (sealers map[string]seal.Sealer, close func()) {
	sealers = map[string]seal.Sealer{}
	var closers []func() error
	pass, err := seal.NewPassphrase()
	if err != nil {
		log.Error("passphrase sealer", "err", err)
	} else {
		sealers[seal.KindPassphrase] = pass
	}
	switch t, err := tpm.Open(tpmPath); {
	case err == nil:
		sealers[seal.KindTPM] = t
		closers = append(closers, t.Close)
		log.Info("TPM 2.0 found", "device", tpmPath)
	case errors.Is(err, seal.ErrDeviceMissing):
	default:
		log.Warn("TPM present but unusable", "err", err)
	}
	// pcscd may still be starting (PID 1 starts it beside the services): its binary counts.
	_, errSock := os.Stat(pcsclite.DefaultSocket)
	_, errBin := os.Stat("/usr/sbin/pcscd")
	if errSock == nil || errBin == nil {
		sealers[seal.KindPIV] = piv.New(piv.Config{})
		log.Info("PC/SC daemon found: YubiKey protection available")
	}
	return sealers, func() {
		for _, c := range closers {
			c()
		}
	}
}
