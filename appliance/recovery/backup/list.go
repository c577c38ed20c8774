package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// File is a backup file in a directory, as its clear header describes it.
type File struct {
	Name        string    `json:"name"`
	Size        int64     `json:"size"`
	Created     time.Time `json:"created,omitzero"`
	BoxVersion  string    `json:"box_version,omitempty"`
	Network     string    `json:"network,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	// Err is why the header cannot be read (the file is still listed: a damaged backup is
	// something the owner must hear about); Problem is its message.
	Err     error  `json:"-"`
	Problem string `json:"problem,omitempty"`
}

// List lists the backup files (FileSuffix) in dir from their clear headers, newest first.
// A missing directory holds none.
func List(dir string) ([]File, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []File
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), FileSuffix) {
			continue
		}
		bf := File{Name: e.Name()}
		if fi, err := e.Info(); err == nil {
			bf.Size = fi.Size()
		}
		if h, err := readHeaderFile(filepath.Join(dir, e.Name())); err != nil {
			bf.Err, bf.Problem = err, err.Error()
		} else {
			bf.Created, bf.BoxVersion, bf.Network, bf.Fingerprint = h.Created, h.BoxVersion, h.Network, h.Fingerprint
		}
		out = append(out, bf)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].Name > out[j].Name
	})
	return out, nil
}
