package checkin

import (
	"context"
	"fmt"
	"os"

	"github.com/anya-edge/anya/appliance/update/fleet"
)

// FileKeys keeps the device key in a file (fleet.SoftwareKey): for boxes without a TPM.
type FileKeys struct {
	Path string
}

// Create replaces the key file with a new key.
func (k FileKeys) Create(ctx context.Context) (fleet.Key, []byte, error) {
	if err := os.Remove(k.Path); err != nil && !os.IsNotExist(err) {
		return nil, nil, fmt.Errorf("replace device key: %w", err)
	}
	key, err := fleet.LoadOrCreateSoftwareKey(k.Path)
	return key, nil, err
}

// Load reads the key file.
func (k FileKeys) Load(ctx context.Context, _ []byte) (fleet.Key, error) {
	return fleet.LoadSoftwareKey(k.Path)
}
